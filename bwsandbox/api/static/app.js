// The web UI: plain DOM over the same /api/v1 the integrators use. Every
// value is set with textContent (never innerHTML), so hostile names and
// cells are shown, not run. No external asset; the page's CSP forbids them.
"use strict";
const API = "/api/v1";
const token = new URLSearchParams(location.search).get("token") || sessionStorage.getItem("bwsandbox-token");
if (token) sessionStorage.setItem("bwsandbox-token", token);

function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function get(path) {
  const response = await fetch(API + path, { headers: authHeaders() });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

// RFC 4180 CSV (quoted fields, doubled quotes, CRLF), as the error file is written.
function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(cell); cell = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); rows.push(row); row = []; cell = "";
    } else cell += ch;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

// The error file's original cells by row number: {columns, rows: Map(row -> cells)}.
async function errorCells(url) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) return null;
  const [head, ...lines] = parseCsv(await response.text());
  if (!head || head.length < 3) return null;
  const n = head.length - 3;  // original columns, then row, status, errors
  const rows = new Map();
  for (const line of lines) if (line.length === head.length && line[n]) rows.set(line[n], line.slice(0, n));
  return { columns: head.slice(0, n), rows };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A download link. Plain `<a href download>` sends no Authorization header, so
// with a token the click fetches the file with the Bearer header instead and
// saves it from a Blob, under the server's Content-Disposition name.
function fileName(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) try { return decodeURIComponent(star[1].trim()); } catch { /* keep looking */ }
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : fallback;
}

function downloadLink(url, name, attrs, text) {
  const link = el("a", { ...attrs, href: url, download: name || "" }, text);
  if (!token) return link;
  const status = el("span", { class: "error" });
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    status.textContent = "";
    try {
      const response = await fetch(url, { headers: authHeaders() });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const blob = await response.blob();
      const objectUrl = URL.createObjectURL(blob);
      const save = el("a", { href: objectUrl, download: fileName(response, name || "download") });
      save.hidden = true;
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(objectUrl), 60000);
    } catch (error) {
      status.textContent = ` Download failed: ${error.message || error}`;
    }
  });
  return [link, status];
}

function table(columns, rows, cell = (row, column) => row[column] ?? "") {
  return el("table", {}, el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, columns.map((c) => el("td", {}, cell(row, c)))))));
}

const app = document.getElementById("app");
// replaceChildren, skipping nulls and flattening lists (as el() does)
function fill(node, ...children) {
  node.replaceChildren(...children.flat(2).filter((c) => c !== null && c !== undefined));
}
const enc = encodeURIComponent;

async function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  fill(app, el("p", {}, "Loading…"));
  try {
    if (parts[0] === "ui" && parts[1] === "tenants" && parts[3] === "uploads") await uploadPage(parts[2], parts[4]);
    else if (parts[0] === "ui" && parts[1] === "tenants" && parts[2]) await tenantPage(parts[2]);
    else await homePage();
  } catch (error) {
    fill(app, el("p", { class: "error" }, String(error.message || error)));
  }
}

async function homePage() {
  const tenants = await get("/tenants");
  fill(app, el("h1", {}, "bwsandbox"), el("p", {}, "Tenants (", el("a", { href: "/docs" }, "API docs"), ")"),
    table(["name", "region", "profile", "username"], tenants, (t, c) =>
      c === "name" ? el("a", { href: `/ui/tenants/${enc(t.name)}` }, t.name) : t[c]));
}

function connectionCard(t) {
  return el("section", { class: "card", id: "connection" }, el("h2", {}, "Connect"),
    el("dl", {}, el("dt", {}, "Host"), el("dd", {}, t.endpoint.host), el("dt", {}, "Port"), el("dd", {}, t.endpoint.port),
      el("dt", {}, "Username"), el("dd", {}, t.username), el("dt", {}, "Upload to"), el("dd", {}, t.endpoint.drop_folder)),
    el("h3", {}, "Host key fingerprints"),
    table(["type", "OpenSSH / FileZilla", "PuTTY"], t.host_keys, (k, c) =>
      el("code", {}, c === "type" ? k.type : c === "PuTTY" ? k.putty : k.openssh_sha256)));
}

let pollVersion = null;
async function tenantPage(name) {
  const t = await get(`/tenants/${enc(name)}`);
  const uploads = el("section", { class: "card", id: "uploads" }, el("h2", {}, "Uploads"));
  const emails = el("section", { class: "card", id: "emails" }, el("h2", {}, "Emails to the Technical Contact"));
  const people = el("section", { class: "card", id: "directory" }, el("h2", {}, "Directory"));
  fill(app, el("p", {}, el("a", { href: "/" }, "All tenants")), el("h1", {}, `Tenant ${t.name}`),
    connectionCard(t), uploads, emails, people);
  const page = location.pathname;
  pollVersion = null;
  while (location.pathname === page) {  // long poll: the server answers when an upload changes
    const since = pollVersion === null ? "" : `?since=${pollVersion}&wait=25`;
    const listing = await get(`/tenants/${enc(name)}/uploads${since}`);
    if (location.pathname !== page) return;
    pollVersion = listing.version;
    fill(uploads, el("h2", {}, "Uploads"), table(["name", "state", "verdict", "counts", "received_at"],
      listing.uploads, (u, c) => c === "name" ? el("a", { href: u.links.ui }, u.name)
        : c === "counts" ? Object.entries(u.counts || {}).filter(([, n]) => n).map(([k, n]) => `${k} ${n}`).join(", ")
          : u[c] ?? ""));
    renderEmails(emails, await get(`/tenants/${enc(name)}/emails`));
    renderDirectory(people, await get(`/tenants/${enc(name)}/users`));
  }
}

function renderEmails(section, emails) {
  fill(section, el("h2", {}, "Emails to the Technical Contact"),
    emails.length ? null : el("p", {}, "None."),
    emails.map((m) => el("article", { class: "email" }, el("p", {}, el("b", {}, "To: "), m.to),
      el("p", {}, el("b", {}, "Subject: "), m.subject), el("pre", {}, m.text),
      m.attachments.map((a) => el("p", {}, "Attachment: ", downloadLink(a.url, a.name, {}, a.name))))));
}

function renderDirectory(section, users) {
  fill(section, el("h2", {}, "Directory"),
    table(["email", "first_name", "last_name", "title", "manager_email", "status"], users), orgChart(users));
}

function orgChart(users) {
  // Managers above their reports: a tree laid out by depth, drawn as SVG.
  const NS = "http://www.w3.org/2000/svg";
  const byEmail = new Map(users.map((u) => [u.email.toLowerCase(), u]));
  const children = new Map();
  const roots = [];
  for (const u of users) {
    const boss = (u.manager_email || "").toLowerCase();
    if (boss && byEmail.has(boss) && boss !== u.email.toLowerCase()) {
      if (!children.has(boss)) children.set(boss, []);
      children.get(boss).push(u);
    } else roots.push(u);
  }
  const boxes = [];
  let column = 0;
  const seen = new Set();
  function place(u, depth) {
    const key = u.email.toLowerCase();
    if (seen.has(key)) return null;
    seen.add(key);
    const kids = (children.get(key) || []).map((k) => place(k, depth + 1)).filter(Boolean);
    const x = kids.length ? (kids[0].x + kids[kids.length - 1].x) / 2 : column++;
    const box = { u, x, depth, kids };
    boxes.push(box);
    return box;
  }
  roots.forEach((r) => place(r, 0));
  const W = 170, H = 44, GX = 20, GY = 40;
  const svg = document.createElementNS(NS, "svg");
  const depth = Math.max(0, ...boxes.map((b) => b.depth)) + 1;
  svg.setAttribute("width", String(Math.max(1, column) * (W + GX)));
  svg.setAttribute("height", String(depth * (H + GY)));
  svg.setAttribute("id", "orgchart");
  svg.setAttribute("role", "img");
  const at = (b) => [b.x * (W + GX) + 4, b.depth * (H + GY) + 4];
  for (const b of boxes) for (const k of b.kids) {
    const line = document.createElementNS(NS, "line");
    const [x1, y1] = at(b), [x2, y2] = at(k);
    Object.entries({ x1: x1 + W / 2, y1: y1 + H, x2: x2 + W / 2, y2 }).forEach(([a, v]) => line.setAttribute(a, String(v)));
    svg.append(line);
  }
  for (const b of boxes) {
    const [x, y] = at(b);
    const rect = document.createElementNS(NS, "rect");
    Object.entries({ x, y, width: W, height: H, rx: 6 }).forEach(([a, v]) => rect.setAttribute(a, String(v)));
    if (b.u.status !== "active") rect.setAttribute("class", "inactive");
    const name = document.createElementNS(NS, "text");
    name.setAttribute("x", String(x + 8)); name.setAttribute("y", String(y + 18));
    name.textContent = `${b.u.first_name || ""} ${b.u.last_name || ""}`.trim() || b.u.email;
    const title = document.createElementNS(NS, "text");
    title.setAttribute("x", String(x + 8)); title.setAttribute("y", String(y + 35)); title.setAttribute("class", "small");
    title.textContent = b.u.title || b.u.email;
    svg.append(rect, name, title);
  }
  return el("figure", {}, el("figcaption", {}, "Org chart"), svg);
}

async function uploadPage(name, id) {
  const u = await get(`/tenants/${enc(name)}/files/${enc(id)}`);
  const report = u.report || {};
  const findings = report.findings || [];
  const byRow = new Map();
  for (const f of findings) {
    const key = f.row ?? "file";
    if (!byRow.has(key)) byRow.set(key, []);
    byRow.get(key).push(f);
  }
  // The report carries no cells; the error file does (original columns + row, status, errors).
  const original = u.links.errors_csv ? await errorCells(u.links.errors_csv) : null;
  const bare = (c) => String(c ?? "").replace(/^'/, "").trim();  // the error file's formula guard, docs/production.md §6 trim
  const groups = [...byRow.entries()].map(([row, list]) => {
    const cells = row === "file" || !original ? null : original.rows.get(String(row));
    const flagged = new Set(list.map((f) => f.column).filter(Boolean).map(bare));
    const cellTable = cells ? el("div", { class: "cells-wrap" }, el("table", { class: "cells" },
      el("thead", {}, el("tr", {}, original.columns.map((h) => el("th", {}, h)))),
      el("tbody", {}, el("tr", {}, cells.map((c, i) => {
        const bad = flagged.has(bare(original.columns[i]));
        return el("td", bad ? { class: "bad", title: "flagged" } : {}, c);
      }))))) : null;
    return el("section", { class: "row", "data-row": String(row) },
      el("h3", {}, row === "file" ? "The whole file" : `Row ${row}`),
      el("div", { class: "row-body" }, cellTable,
        el("ul", { class: "findings" }, list.map((f) => el("li", { class: f.severity }, el("code", {}, f.code), " ",
          f.column ? el("b", {}, f.column + ": ") : null, f.message)))));
  });
  const changes = (u.changes || []).map((h) => el("li", { class: `action-${h.action}` }, `${h.action} ${h.subject}`,
    h.status && h.status !== "active" ? ` (now ${h.status})` : "",
    el("ul", {}, Object.entries(h.changes).map(([field, [before, after]]) =>
      el("li", {}, el("code", {}, field), ": ", String(before ?? ""), " → ", String(after ?? ""))))));
  // reports.py: overwritten_manual_edits[] = {row, email, field, manual_value, file_value, edited_at, edited_by}
  const overwritten = (report.overwritten_manual_edits || []).map((m) =>
    el("li", {}, `${m.email ?? ""} `, el("code", {}, m.field ?? ""), `: the admin's “${m.manual_value ?? ""}”`,
      m.edited_by || m.edited_at ? ` (${[m.edited_by, m.edited_at].filter(Boolean).join(", ")})` : "",
      ` replaced by the file's “${m.file_value ?? ""}”`, m.row ? ` (row ${m.row})` : ""));
  // applied = {created, updated, deactivated, reactivated, terminated, unchanged, skipped, departments_*}
  const counts = Object.entries(report.applied || {}).filter(([, n]) => n);
  fill(app, el("p", {}, el("a", { href: `/ui/tenants/${enc(name)}` }, `Tenant ${name}`)),
    el("h1", {}, u.name),
    el("p", { id: "verdict" }, `State ${u.state}; verdict ${u.verdict ?? "—"}`),
    u.links.errors_csv ? el("p", {}, downloadLink(u.links.errors_csv, `${u.name}.errors.csv`, { id: "errors-csv" }, "Download the error file")) : null,
    el("h2", {}, "Findings"), findings.length ? groups : el("p", {}, "None."),
    el("h2", {}, "Applied"),
    el("p", { id: "applied-counts" }, counts.length ? counts.map(([k, n]) => `${k.replace(/_/g, " ")} ${n}`).join(", ") : "Nothing."),
    el("ul", { id: "applied" }, changes),
    overwritten.length ? el("h2", {}, "Manual edits overwritten") : null,
    overwritten.length ? el("ul", { id: "overwritten" }, overwritten) : null);
}

window.addEventListener("popstate", route);
route();
