// A Node export job's test against bwsandbox, through its HTTP API only:
// seed a tenant, upload with the job's own SFTP library, wait, assert.
//   BWSANDBOX_URL=http://127.0.0.1:2280 npm test
import { test } from "node:test";
import assert from "node:assert/strict";
import SftpClient from "ssh2-sftp-client";

const base = (process.env.BWSANDBOX_URL ?? "http://127.0.0.1:2280") + "/api/v1";
const headers = { "Content-Type": "application/json" };
if (process.env.BWSANDBOX_API_TOKEN) headers.Authorization = `Bearer ${process.env.BWSANDBOX_API_TOKEN}`;

async function api(method, path, body) {
  const response = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text && JSON.parse(text) };
}

test("the export job's file is applied, and a bad row reaches the Technical Contact", async () => {
  await api("DELETE", "/tenants/node-example");
  const created = await api("POST", "/tenants", {
    name: "node-example", contact: "hris@example.com",
    users: [{ email: "ada@example.com", first_name: "Ada", last_name: "Lovelace" }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const tenant = created.body;

  // Trust only the host keys the sandbox announced (as with production's published fingerprint).
  const trusted = new Set(tenant.host_keys.map((k) => k.openssh_sha256.replace("SHA256:", "")));
  const sftp = new SftpClient();
  await sftp.connect({
    host: tenant.endpoint.host, port: tenant.endpoint.port,
    username: tenant.username, password: tenant.password,
    hostHash: "sha256",
    hostVerifier: (hash) => trusted.has(Buffer.from(hash, "hex").toString("base64").replace(/=+$/, "")),
  });
  const csv = "email,first_name,last_name,manager_email,title\r\n" +
    "ada@example.com,Ada,Lovelace,,CEO\r\n" +
    "grace@example.com,Grace,Hopper,ada@example.com,CTO\r\n" +
    "not-an-email,Alan,Turing,ada@example.com,CSO\r\n";
  await sftp.put(Buffer.from(csv), `${tenant.endpoint.drop_folder}/users_20260302.csv`);
  await sftp.end();

  const upload = await api("GET", "/tenants/node-example/uploads/users_20260302.csv?wait=60");
  assert.equal(upload.status, 200);
  assert.equal(upload.body.state, "done");
  assert.equal(upload.body.verdict, "partial");
  const users = (await api("GET", "/tenants/node-example/users")).body;
  assert.equal(users.find((u) => u.email === "grace@example.com").manager_email, "ada@example.com");
  const [email] = (await api("GET", "/tenants/node-example/emails")).body;
  assert.equal(email.to, "hris@example.com");
  const attachment = await fetch(new URL(email.attachments[0].url, base), { headers });
  assert.match(await attachment.text(), /not-an-email/);
});
