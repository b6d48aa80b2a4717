#!/usr/bin/env bash
# Self test of the reference relying party (rp.mjs): a throwaway CA + leaf for 127.0.0.1
# in a temp dir, the hand-written test IdP (tests/idp/bad.mjs, scenario good-rs256), then
# full logins with curl: /start -> IdP /auth (auto-approves) -> /callback -> POST /sessions,
# twice with the same login_hint (first and returning login: same user, same wallet), once
# with another, plus the single-use and PKCE refusals, and that the RP stops on stdin EOF.
# Needs node, npm, openssl, curl. Usage: bash selftest.sh   (runs install.sh and, when
# tests/idp/node_modules is missing, npm ci there).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
bash "$HERE/install.sh"
[ -d "$ROOT/tests/idp/node_modules" ] || (cd "$ROOT/tests/idp" && npm ci --no-audit --no-fund --loglevel=error >&2)

T=$(mktemp -d /tmp/reference-rp-selftest.XXXXXX)
cleanup() {
  exec 3>&- 4>&- 5>&- 2>/dev/null || true
  [ -n "${IDP_PID:-}" ] && kill "$IDP_PID" 2>/dev/null || true
  [ -n "${RP_PID:-}" ] && kill "$RP_PID" 2>/dev/null || true
  [ -n "${RP2_PID:-}" ] && kill "$RP2_PID" 2>/dev/null || true
  sleep 0.2
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T"

# --- TLS: CA + leaf for IP 127.0.0.1 (as tests/idp/bad-selftest.sh)
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 \
  -subj "/CN=reference rp selftest CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile ext.cnf -out server.pem 2>/dev/null

# wait_ready FILE PID -> port from the {"port":N} line
wait_ready() {
  for _ in $(seq 150); do
    [ -s "$1" ] && break
    kill -0 "$2" 2>/dev/null || { echo "process exited before its ready line:" >&2; cat "${1%.out}.err" >&2; exit 1; }
    sleep 0.1
  done
  node -e 'console.log(JSON.parse(process.argv[1]).port)' "$(head -n1 "$1")"
}

# --- the IdP; its stdin is a FIFO held open on fd 3
cat > idp.json <<EOF
{ "cert": "$T/server.pem", "key": "$T/server-key.pem", "client_id": "rp-bench", "client_secret": "rp-bench-secret" }
EOF
mkfifo idp.fifo
node "$ROOT/tests/idp/bad.mjs" idp.json < idp.fifo > idp.out 2> idp.err &
IDP_PID=$!
exec 3> idp.fifo
IDP_PORT=$(wait_ready idp.out "$IDP_PID")
ISSUER="https://127.0.0.1:$IDP_PORT/good-rs256"
echo "IdP: $ISSUER"

# --- the RP; stdin FIFO on fd 4
RETURN_TO=https://app.example.test/done
# rp_config SCENARIO NAME -> NAME.json
rp_config() {
  cat > "$2.json" <<EOF
{ "issuer": "https://127.0.0.1:$IDP_PORT/$1", "client_id": "rp-bench", "client_secret": "rp-bench-secret",
  "token_endpoint_auth_method": "client_secret_basic", "db": "$T/$2.sqlite",
  "ca_file": "$T/ca.pem", "allowed_return_urls": ["$RETURN_TO"] }
EOF
}
rp_config good-rs256 rp
mkfifo rp.fifo
NODE_EXTRA_CA_CERTS="$T/ca.pem" node "$HERE/rp.mjs" rp.json < rp.fifo > rp.out 2> rp.err &
RP_PID=$!
exec 4> rp.fifo
RP_PORT=$(wait_ready rp.out "$RP_PID")
RP=http://127.0.0.1:$RP_PORT
echo "RP:  $RP (ready line: $(head -n1 rp.out))"

FAILS=0
PASSES=0
check() { local d=$1; shift; if "$@"; then echo "ok   - $d"; PASSES=$((PASSES+1)); else echo "FAIL - $d"; FAILS=$((FAILS+1)); fi; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
json() { node -e 'let v = JSON.parse(require("fs").readFileSync(0, "utf8")); for (const k of process.argv[1].split(".")) v = v?.[k]; console.log(typeof v === "string" ? v : JSON.stringify(v ?? null))' "$1"; }
param() { node -e 'console.log(new URL(process.argv[1]).searchParams.get(process.argv[2]) ?? "")' "$1" "$2"; }

# login TAG HINT: one browser (cookie jar TAG.jar); leaves TAG.cb (callback URL),
# TAG.ret (return_to URL), TAG.verifier, TAG.session (POST /sessions answer), TAG.status
login() {
  local tag=$1 hint=$2 verifier challenge idp cb ret
  verifier=$(head -c 32 /dev/urandom | b64url)
  challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | b64url)
  echo "$verifier" > "$tag.verifier"
  idp=$(curl -sS -c "$tag.jar" -o /dev/null -w '%{redirect_url}' -G "$RP/start" \
    --data-urlencode "return_to=$RETURN_TO" --data-urlencode "code_challenge=$challenge" \
    --data-urlencode code_challenge_method=S256 --data-urlencode "state=app-$tag" --data-urlencode "login_hint=$hint")
  cb=$(curl -sS --cacert ca.pem -o /dev/null -w '%{redirect_url}' "$idp")
  echo "$cb" > "$tag.cb"
  ret=$(curl -sS -b "$tag.jar" -o /dev/null -w '%{redirect_url}' "$cb")
  echo "$ret" > "$tag.ret"
  curl -sS -o "$tag.session" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"login_code\":\"$(param "$ret" login_code)\",\"code_verifier\":\"$verifier\"}" "$RP/sessions" > "$tag.status"
}

echo; echo "== first login (login_hint=alice)"
login a1 alice
echo "  callback: $(sed -E 's/code=[^&]*/code=…/' a1.cb)"
echo "  return:   $(sed -E 's/login_code=[^&]*/login_code=…/' a1.ret)"
echo "  session:  HTTP $(cat a1.status) $(sed -E 's/"token":"[^"]*"/"token":"…"/' a1.session)"
check "start redirected to the IdP and the IdP back to /callback" grep -q "^http://127.0.0.1:$RP_PORT/callback?code=" a1.cb
check "callback redirected to return_to with login_code and the app's state" \
  [ "$(param "$(cat a1.ret)" state)" = app-a1 -a -n "$(param "$(cat a1.ret)" login_code)" ]
check "POST /sessions: 200 with a token" [ "$(cat a1.status)" = 200 -a -n "$(json token < a1.session)" ]
check "one EVM wallet with an EIP-55 address" [ "$(json wallets.length < a1.session) $(json wallets.0.type < a1.session)" = "1 EVM" ]
ADDR=$(json wallets.0.address < a1.session)
check "address is 0x + 40 hex" grep -Eq '^0x[0-9a-fA-F]{40}$' <<< "$ADDR"
PUB=$(json wallets.0.publicKey < a1.session)
check "address = EIP-55 of keccak256(public key)[12..], public key compressed secp256k1" \
  [ "$(cd "$HERE" && node --input-type=module -e '
    import { secp256k1 } from "@noble/curves/secp256k1.js";
    import { keccak_256 } from "@noble/hashes/sha3.js";
    const pub = secp256k1.Point.fromHex(process.argv[1].slice(2)).toBytes(false);
    const a = Buffer.from(keccak_256(pub.subarray(1))).subarray(12).toString("hex");
    const h = Buffer.from(keccak_256(Buffer.from(a))).toString("hex");
    console.log("0x" + [...a].map((c, i) => (parseInt(h[i], 16) >= 8 ? c.toUpperCase() : c)).join(""));' "$PUB")" = "$ADDR" ]
check "identity is (issuer, sub=alice) with the verified email" \
  [ "$(json user.identities.0.sub < a1.session) $(json user.identities.0.email < a1.session)" = "alice alice@example.test" ]

echo; echo "== returning login (login_hint=alice again)"
login a2 alice
echo "  session:  HTTP $(cat a2.status) user $(json user.id < a2.session)"
check "same user id as the first login" [ "$(json user.id < a2.session)" = "$(json user.id < a1.session)" -a -n "$(json user.id < a1.session)" ]
check "same single wallet" [ "$(json wallets.length < a2.session) $(json wallets.0.address < a2.session)" = "1 $ADDR" ]

echo; echo "== another user (login_hint=bob)"
login b1 bob
check "bob: 200, another user, another wallet" \
  [ "$(cat b1.status)" = 200 -a "$(json user.id < b1.session)" != "$(json user.id < a1.session)" -a "$(json wallets.0.address < b1.session)" != "$ADDR" ]

echo; echo "== refusals"
code=$(curl -sS -o r1.body -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"login_code\":\"$(param "$(cat a1.ret)" login_code)\",\"code_verifier\":\"$(cat a1.verifier)\"}" "$RP/sessions")
echo "  login code again: HTTP $code $(cat r1.body)"
check "a login code works once" [ "$code $(json error < r1.body)" = "400 login_code_invalid" ]
code=$(curl -sS -o r2.body -w '%{http_code}' -b a1.jar "$(cat a1.cb)")
echo "  callback again:   HTTP $code $(cat r2.body)"
check "a state works once" [ "$code $(json error < r2.body)" = "400 state_invalid" ]
# a callback without the browser's cookie
verifier=$(head -c 32 /dev/urandom | b64url); challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | b64url)
idp=$(curl -sS -o /dev/null -w '%{redirect_url}' -G "$RP/start" --data-urlencode "return_to=$RETURN_TO" \
  --data-urlencode "code_challenge=$challenge" --data-urlencode login_hint=carol)
cb=$(curl -sS --cacert ca.pem -o /dev/null -w '%{redirect_url}' "$idp")
code=$(curl -sS -o r3.body -w '%{http_code}' "$cb")
check "a callback from another browser (no cookie) is refused" [ "$code $(json error < r3.body)" = "400 state_invalid" ]
# a wrong code_verifier uses the login code up
verifier=$(head -c 32 /dev/urandom | b64url); challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | b64url)
idp=$(curl -sS -c p2.jar -o /dev/null -w '%{redirect_url}' -G "$RP/start" --data-urlencode "return_to=$RETURN_TO" \
  --data-urlencode "code_challenge=$challenge" --data-urlencode login_hint=dave)
cb=$(curl -sS --cacert ca.pem -o /dev/null -w '%{redirect_url}' "$idp")
ret=$(curl -sS -b p2.jar -o /dev/null -w '%{redirect_url}' "$cb")
lc=$(param "$ret" login_code)
code=$(curl -sS -o r5.body -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"login_code\":\"$lc\",\"code_verifier\":\"$(head -c 32 /dev/urandom | b64url)\"}" "$RP/sessions")
echo "  wrong verifier:   HTTP $code $(cat r5.body)"
check "a wrong code_verifier is refused (pkce_invalid)" [ "$code $(json error < r5.body)" = "400 pkce_invalid" ]
code=$(curl -sS -o r6.body -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"login_code\":\"$lc\",\"code_verifier\":\"$verifier\"}" "$RP/sessions")
check "... and uses the login code up" [ "$code $(json error < r6.body)" = "400 login_code_invalid" ]
code=$(curl -sS -o r7.body -w '%{http_code}' -G "$RP/start" --data-urlencode "return_to=https://evil.example/done" \
  --data-urlencode "code_challenge=$challenge")
check "a return_to that is not allowed is refused" [ "$code $(json error < r7.body)" = "400 return_to_not_allowed" ]

echo; echo "== the ID token's signature is checked (IdP scenario bad-sig-rs256, a second RP)"
rp_config bad-sig-rs256 rp2
mkfifo rp2.fifo
NODE_EXTRA_CA_CERTS="$T/ca.pem" node "$HERE/rp.mjs" rp2.json < rp2.fifo > rp2.out 2> rp2.err &
RP2_PID=$!
exec 5> rp2.fifo
RP2_PORT=$(wait_ready rp2.out "$RP2_PID")
RP_SAVE=$RP; RP=http://127.0.0.1:$RP2_PORT
login s1 alice
RP=$RP_SAVE
echo "  return:   $(cat s1.ret)"
S1_DESC=$(param "$(cat s1.ret)" error_description)
check "bad signature: back to return_to with no login code and an error naming the signature" \
  [ -z "$(param "$(cat s1.ret)" login_code)" -a "$(param "$(cat s1.ret)" error)" = login_failed ]
check "... error_description: $S1_DESC" grep -q "signature verification failed" <<< "$S1_DESC"
exec 5>&-

echo; echo "== shutdown"
exec 4>&-
for _ in $(seq 50); do kill -0 "$RP_PID" 2>/dev/null || break; sleep 0.1; done
check "RP exits when stdin closes" bash -c "! kill -0 $RP_PID 2>/dev/null"
check "RP stdout held only the ready line" [ "$(wc -l < rp.out)" -eq 1 ]
echo "RP stderr ($(wc -l < rp.err) lines):"; sed 's/^/  | /' rp.err | head -20
echo "selftest: $PASSES passed, $FAILS failed"
[ $FAILS -eq 0 ]
