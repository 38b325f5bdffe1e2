#!/usr/bin/env bash
# An export job's CI test with nothing but bash and curl: seed a tenant over
# the sandbox's HTTP API, upload over SFTP with curl, wait for the report and
# assert through the API. Run against `bwsandbox serve` (or its container):
#   BWSANDBOX_URL=http://127.0.0.1:2280 examples/api-curl/integrator.sh
set -euo pipefail
api=${BWSANDBOX_URL:-http://127.0.0.1:2280}/api/v1
tenant=${TENANT:-curl-example}
auth=()
work=$(mktemp -d)  # the export's file; removed however the script ends
trap 'rm -rf "$work"' EXIT
[ -n "${BWSANDBOX_API_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $BWSANDBOX_API_TOKEN")
call() { curl --silent --show-error --fail-with-body "${auth[@]}" "$@"; }
json() { grep -o "\"$1\":[^,}]*" | head -n "${2:-1}" | tail -n 1 | cut -d: -f2- | tr -d '"'; }

# 1. A fresh tenant with one existing user (a leftover from an earlier run is deleted first).
call -X DELETE "$api/tenants/$tenant" -o /dev/null 2>/dev/null || true
created=$(call -X POST "$api/tenants" -H 'Content-Type: application/json' -d '{
  "name": "'"$tenant"'", "password": "curl-example-pass", "contact": "hris@example.com",
  "users": [{"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}]}')
host=$(echo "$created" | json host)
port=$(echo "$created" | json port)
pin=$(echo "$created" | json curl_sha256 2)   # curl (libssh2) checks the ECDSA key, the second one

# 2. The export job's upload, host key pinned.
printf 'email,first_name,last_name,manager_email,title\r\nada@example.com,Ada,Lovelace,,CEO\r\ngrace@example.com,Grace,Hopper,ada@example.com,CTO\r\n' > "$work/users_20260301.csv"
curl --silent --show-error -u "$tenant:curl-example-pass" --hostpubsha256 "$pin" \
  -T "$work/users_20260301.csv" "sftp://$host:$port/incoming/"

# 3. Wait (long poll) for its report, then assert.
upload=$(call "$api/tenants/$tenant/uploads/users_20260301.csv?wait=60")
verdict=$(echo "$upload" | json verdict)
[ "$verdict" = accepted ] || { echo "expected accepted, got $verdict: $upload" >&2; exit 1; }
users=$(call "$api/tenants/$tenant/users")
echo "$users" | grep -q '"email":"grace@example.com"' || { echo "grace missing: $users" >&2; exit 1; }
[ "$(call "$api/tenants/$tenant/emails")" = "[]" ] || { echo "unexpected email" >&2; exit 1; }
echo "curl example: $verdict; grace@example.com created"
