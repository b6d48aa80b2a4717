#!/usr/bin/env bash
# Property-based API test: schemathesis (PyPI, pinned) generates requests
# from /openapi.json (admin, partner, wallet, public and end-user routes,
# health) and fails on any 5xx or any response that breaks its schema. Needs target/debug/keystead (scripts/test.sh builds it first).
# Verify and the browser sign-in routes (start, callback) are left out: they
# make outbound requests to the URLs in the generated data, and tests send
# traffic only to loopback.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/keystead"
[ -x "$BIN" ] || { echo "schemathesis: $BIN missing (cargo build -p keystead)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "schemathesis: python3 is required" >&2; exit 1; }

VENV=.venv
VERSION=4.32.5
if [ ! -x "$VENV/bin/schemathesis" ] || [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $VERSION" ]; then
  echo "==> installing schemathesis $VERSION into tests/schemathesis/$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi

DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KEYSTEAD_LISTEN="127.0.0.1:$PORT" KEYSTEAD_DATA_DIR="$DIR/data" KEYSTEAD_LOG=warn \
  "$BIN" serve < /dev/null > "$DIR/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { cat "$DIR/serve.log" >&2; exit 1; }

ADMIN=$(cat "$DIR/data/admin-token")
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PROJECT=$(curl -sf -X POST "$URL/v1/admin/projects" -H "authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' -d '{"name":"schemathesis"}' | json id)
SK=$(curl -sf -X POST "$URL/v1/admin/projects/$PROJECT/api-keys" -H "authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' -d '{"name":"schemathesis"}' | json secret_key)

st() {
  "$VENV/bin/schemathesis" run "$URL/openapi.json" \
    -c not_a_server_error,response_schema_conformance --max-examples 50 --seed 1 "$@"
}
echo "==> schemathesis: partner routes"
st -H "Authorization: Bearer $SK" --include-path-regex '^/v1/partner(/custom-oidc(/client-secret)?)?$'
echo "==> schemathesis: admin routes"
st -H "Authorization: Bearer $ADMIN" --include-path-regex '^/v1/admin/'
echo "==> schemathesis: health"
st --include-path-regex '^/(healthz|readyz)$'
echo "==> schemathesis: wallet routes (partner)"
st -H "Authorization: Bearer $SK" --include-path-regex '^/v1/wallets'
echo "==> schemathesis: public and end-user routes without a session"
st --include-path-regex '^/(v1/sdk/config|v1/sessions|v1/me|v1/me/wallets|\.well-known/jwks\.json)$'
