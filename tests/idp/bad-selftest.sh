#!/usr/bin/env bash
# Manual self test of the misbehaving test IdP (bad.mjs): throwaway CA + leaf for 127.0.0.1
# in a temp dir, starts bad.mjs, then with curl runs the authorization code flow (PKCE S256,
# client_secret_basic) against a handful of scenarios and prints the decoded ID token
# header + payload so a human can see each misbehaviour, checks the token endpoint's
# client/code/PKCE errors, and finally prints a one-line summary for EVERY scenario with
# a reference verdict (jose jwtVerify + nonce/azp/iat-in-future checks) of what a strict
# relying party should do.
# Needs: node (+ `npm ci` in this dir), openssl, curl. Usage: bash bad-selftest.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/bad-idp-selftest.XXXXXX)
trap 'exec 3>&- 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
cd "$T"

# --- TLS: CA + leaf for IP 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 \
  -subj "/CN=bad idp selftest CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile ext.cnf -out server.pem 2>/dev/null

CLIENT_ID=bad-client
SECRET=bad-secret
CB=https://127.0.0.1:1/cb
CBE=https%3A%2F%2F127.0.0.1%3A1%2Fcb
cat > config.json <<EOF
{ "cert": "$T/server.pem", "key": "$T/server-key.pem", "client_id": "$CLIENT_ID", "client_secret": "$SECRET" }
EOF

# --- start; stdin is a FIFO we hold open on fd 3 (closing it must stop the server)
mkfifo stdin.fifo
node "$HERE/bad.mjs" config.json < stdin.fifo > stdout.txt 2> stderr.txt &
PID=$!
exec 3> stdin.fifo
for _ in $(seq 100); do [ -s stdout.txt ] && break; sleep 0.1; done
READY=$(head -n1 stdout.txt)
echo "ready line: $READY"
PORT=$(node -e 'console.log(JSON.parse(process.argv[1]).port)' "$READY")
BASE=https://127.0.0.1:$PORT
C=(curl -sS --cacert "$T/ca.pem")

FAILS=0
check() { local d=$1; shift; if "$@"; then echo "ok   - $d"; else echo "FAIL - $d"; FAILS=$((FAILS+1)); fi; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# JWT / JSON helper (runs in $HERE so that `import "jose"` resolves).
HELPER='
import { readFileSync, existsSync } from "node:fs";
import { jwtVerify, createLocalJWKSet } from "jose";
process.chdir(process.env.JWT_CWD); // file names are relative to the calling shell
const [cmd, ...a] = process.argv.slice(1);
const rd = (f) => readFileSync(f, "utf8");
const js = (f) => { try { return JSON.parse(rd(f)); } catch { return undefined; } };
let now = Math.floor(Date.now() / 1000);
const rel = (t) => (typeof t === "number" ? `now${t - now >= 0 ? "+" : ""}${t - now}` : "-");
// "now" = when the token response was received (TAG.time), not when this runs
const at = (tag) => { if (existsSync(`${tag}.time`)) now = Number(rd(`${tag}.time`)); };
const dec = (jwt) => {
  const [h, p, s] = jwt.split(".");
  const j = (x) => JSON.parse(Buffer.from(x, "base64url").toString("utf8"));
  return { h: j(h), p: j(p), sigLen: Buffer.from(s, "base64url").length };
};
const idt = (tag) => js(`${tag}.tok`)?.id_token;
// Reference verdict: what a strict OIDC relying party should conclude.
async function verdict(jwt, key, iss, nonce, algs = ["RS256", "ES256"]) {
  try {
    const { payload: p } = await jwtVerify(jwt, key, {
      issuer: iss, audience: "bad-client", algorithms: algs, requiredClaims: ["sub", "iat", "exp"],
    });
    if (p.nonce !== nonce) return `REJECT nonce ${p.nonce === undefined ? "missing" : `mismatch (${p.nonce})`}`;
    if (Array.isArray(p.aud) && p.aud.length > 1 && p.azp !== "bad-client") return "REJECT several aud but no azp = client_id";
    if (p.iat > now + 60) return `REJECT iat in the future (${rel(p.iat)})`;
    return "ACCEPT";
  } catch (e) {
    return `REJECT ${e.code ?? e.name}: ${e.message}`;
  }
}
const out = (s) => console.log(s);
if (cmd === "show") { // show TAG
  const [tag] = a;
  at(tag);
  const jwt = idt(tag);
  if (!jwt) { out(`  token endpoint: HTTP ${rd(`${tag}.status`)} ${rd(`${tag}.tok`).trim()}`); process.exit(0); }
  const { h, p, sigLen } = dec(jwt);
  out(`  header:    ${JSON.stringify(h)}`);
  out(`  payload:   ${JSON.stringify(p)}`);
  out(`  times:     exp=${rel(p.exp)} iat=${rel(p.iat)}   signature: ${sigLen} bytes${sigLen ? "" : " (EMPTY)"}`);
} else if (cmd === "verify") { // verify TAG JWKSFILE ISS  -> exit 0 iff ACCEPT
  const [tag, jwksFile, iss] = a;
  const v = await verdict(idt(tag), createLocalJWKSet(js(jwksFile)), iss, rd(`${tag}.nonce`).trim());
  out(`  verdict:   ${v}`);
  process.exit(v === "ACCEPT" ? 0 : 1);
} else if (cmd === "hs256") { // hs256 TAG SECRET ISS
  const [tag, secret, iss] = a;
  const v = await verdict(idt(tag), new TextEncoder().encode(secret), iss, rd(`${tag}.nonce`).trim(), ["HS256"]);
  out(`  HMAC-SHA256 with the client secret: ${v}`);
  process.exit(v === "ACCEPT" ? 0 : 1);
} else if (cmd === "get") { // get FILE PATH (dot path into JSON; jwt.header / jwt.payload for an id_token)
  const [f, path] = a;
  let v = js(f);
  for (const k of path.split(".")) {
    if (k === "jwt") { v = v && v.id_token ? dec(v.id_token) : undefined; continue; }
    if (k === "header") { v = v?.h; continue; }
    if (k === "payload") { v = v?.p; continue; }
    v = v?.[k];
  }
  out(v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
} else if (cmd === "kids") { // kids JWKSFILE
  out((js(a[0])?.keys ?? []).map((k) => `${k.kty}${k.crv ? `/${k.crv}` : ""} kid=${k.kid ?? "(none)"} use=${k.use ?? "-"} alg=${k.alg ?? "-"}${k.d ? " PRIVATE!" : ""}`).join(", "));
} else if (cmd === "summary") { // summary BASE SCENARIO...
  const [base, ...names] = a;
  for (const s of names) {
    at(s);
    const iss = `${base}/${s}`;
    const lines = [];
    const reject = [];
    const disc = js(`${s}.disc`);
    if (disc?.issuer !== iss) {
      lines.push(`discovery issuer=${disc?.issuer}`);
      reject.push("discovery issuer is not the configured issuer");
    }
    const q = URL.canParse(rd(`${s}.redirect`).trim()) ? new URL(rd(`${s}.redirect`).trim()).searchParams : new URLSearchParams("error=NO-REDIRECT");
    if (q.get("error")) {
      lines.push(`auth: error=${q.get("error")} (${q.get("error_description")}) state=${q.has("state") ? "ok" : "MISSING"} iss=${q.get("iss")}`);
      reject.push(`authorization error ${q.get("error")}`);
    } else if (q.get("iss") !== iss) {
      lines.push(`auth: code, iss param=${q.get("iss")}`);
      reject.push("iss authorization response parameter is not the issuer (RFC 9207)");
    }
    if (existsSync(`${s}.tok`) && !idt(s) && rd(`${s}.tok`).trim()) {
      lines.push(`token: HTTP ${rd(`${s}.status`)} ${rd(`${s}.tok`).trim()}`);
      reject.push(`token endpoint error ${js(`${s}.tok`)?.error}`);
    }
    const jwt = idt(s);
    if (jwt) {
      const { h, p, sigLen } = dec(jwt);
      const nonce = rd(`${s}.nonce`).trim();
      const diff = [];
      if (p.iss !== iss) diff.push(`iss=${p.iss}`);
      if (p.sub !== "bad-user-1") diff.push(`sub=${p.sub ?? "(absent)"}`);
      if (JSON.stringify(p.aud) !== JSON.stringify("bad-client")) diff.push(`aud=${JSON.stringify(p.aud) ?? "(absent)"}`);
      if ("azp" in p) diff.push(`azp=${p.azp}`);
      if (p.exp - now < 295 || p.exp - now > 300) diff.push(`exp=${rel(p.exp)}`);
      if (p.iat === undefined || Math.abs(p.iat - now) > 5) diff.push(`iat=${rel(p.iat)}`);
      if (p.nonce !== nonce) diff.push(`nonce=${p.nonce ?? "(absent)"}`);
      if (p.email === undefined) diff.push("email=(absent)");
      if (p.email_verified !== true) diff.push(`email_verified=${p.email_verified ?? "(absent)"}`);
      lines.push(`id_token: alg=${h.alg} kid=${h.kid ?? "(none)"} sig=${sigLen}B${diff.length ? `  claims: ${diff.join(" ")}` : "  claims: as expected"}`);
      const jwks = js(`${s}.jwks`);
      if (JSON.stringify(jwks?.keys?.map((k) => [k.kid, k.use])) !== JSON.stringify([["rsa-1", "sig"], ["ec-1", "sig"]])) {
        lines.push(`jwks: ${(jwks?.keys ?? []).map((k) => `${k.kty} kid=${k.kid ?? "(none)"} use=${k.use}`).join(", ")}`);
      }
      const v = await verdict(jwt, createLocalJWKSet(jwks), iss, nonce);
      if (v !== "ACCEPT") reject.push(`ID token: ${v.replace(/^REJECT /, "")}`);
      const ui = js(`${s}.ui`);
      if (ui) lines.push(`userinfo: ${JSON.stringify(ui)}`);
      if (ui && ui.sub !== p.sub) reject.push(`userinfo sub ${ui.sub} != ID token sub ${p.sub}`);
      const ev = p.email_verified ?? ui?.email_verified;
      if (!reject.length && ev !== true) lines.push(`note: email_verified=${ev}`);
    }
    lines.push(`strict RP verdict: ${reject.length ? `REJECT (first failure: ${reject[0]})` : "ACCEPT"}`);
    out(`${s}`);
    for (const l of lines) out(`    ${l}`);
  }
}
'
jwt() { (JWT_CWD=$PWD; cd "$HERE" && JWT_CWD=$JWT_CWD node --input-type=module -e "$HELPER" "$@"); }

# authorize SCENARIO TAG [extra query] -> TAG.redirect TAG.code TAG.verifier TAG.nonce
authorize() {
  local S=$1 TAG=$2 EXTRA=${3:-} verifier challenge state nonce url code
  verifier=$(head -c 32 /dev/urandom | b64url)
  challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | b64url)
  state=st-$RANDOM; nonce=n-$RANDOM$RANDOM
  url=$("${C[@]}" -o /dev/null -w '%{redirect_url}' "$BASE/$S/auth?response_type=code&client_id=$CLIENT_ID&redirect_uri=$CBE&scope=openid%20email&state=$state&nonce=$nonce&code_challenge=$challenge&code_challenge_method=S256$EXTRA")
  echo "$url" > "$TAG.redirect"; echo "$verifier" > "$TAG.verifier"; echo "$nonce" > "$TAG.nonce"
  code=""; [[ $url == *[?\&]code=* ]] && { code=${url#*[?&]code=}; code=${code%%&*}; }
  printf '%s' "$code" > "$TAG.code"
}
# redeem SCENARIO TAG [curl client-auth args...] (default client_secret_basic) -> TAG.tok TAG.status
redeem() {
  local S=$1 TAG=$2; shift 2
  local auth=("$@"); [ $# -eq 0 ] && auth=(-u "$CLIENT_ID:$SECRET")
  "${C[@]}" "${auth[@]}" -d grant_type=authorization_code --data-urlencode "code=$(cat "$TAG.code")" \
    --data-urlencode "redirect_uri=$CB" --data-urlencode "code_verifier=$(cat "$TAG.verifier")" \
    -o "$TAG.tok" -w '%{http_code}' "$BASE/$S/token" > "$TAG.status"
  date +%s > "$TAG.time"
}
# login SCENARIO TAG: authorize + redeem (basic) + discovery + JWKS (fetched after the token,
# like an RP without a cache) + userinfo
login() {
  local S=$1 TAG=$2 at
  "${C[@]}" "$BASE/$S/.well-known/openid-configuration" > "$TAG.disc"
  authorize "$S" "$TAG"
  : > "$TAG.tok"; echo - > "$TAG.status"
  if [ -s "$TAG.code" ]; then redeem "$S" "$TAG"; fi
  "${C[@]}" "$BASE/$S/jwks" > "$TAG.jwks"
  at=$(jwt get "$TAG.tok" access_token)
  rm -f "$TAG.ui"; [ -n "$at" ] && "${C[@]}" -H "Authorization: Bearer $at" "$BASE/$S/userinfo" > "$TAG.ui"
  return 0
}
showauth() { local u; u=$(cat "$1.redirect"); u=${u#"$CB"}; echo "  auth ->    $CB${u//code=$(cat "$1.code")/code=…}"; }

# --- scenario listing
"${C[@]}" "$BASE/_scenarios" > scenarios.json
SCENARIOS=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8")).join(" "))' < scenarios.json)
echo "scenarios ($(wc -w <<< "$SCENARIOS")): $SCENARIOS"
check "44 scenarios listed" [ "$(wc -w <<< "$SCENARIOS")" -eq 44 ]

echo; echo "== good-rs256 (control)"
login good-rs256 g1; showauth g1; jwt show g1
echo "  jwks:      $(jwt kids g1.jwks)"
echo "  userinfo:  $(cat g1.ui)"
check "good-rs256 id_token verifies (RS256, iss, aud, nonce)" jwt verify g1 g1.jwks "$BASE/good-rs256"
check "good-rs256 iss param = issuer" [ "$(node -p 'new URL(process.argv[1]).searchParams.get("iss")' "$(cat g1.redirect)")" = "$BASE/good-rs256" ]
check "good-rs256 discovery issuer exact" [ "$(jwt get g1.disc issuer)" = "$BASE/good-rs256" ]

echo; echo "== alg-none"
login alg-none an; showauth an; jwt show an
check "alg-none: header alg none" [ "$(jwt get an.tok jwt.header.alg)" = none ]
check "alg-none: signature empty" [ -z "$(jwt get an.tok id_token | cut -d. -f3)" ]
jwt verify an an.jwks "$BASE/alg-none" && r=0 || r=$?
check "alg-none: strict verifier rejects" [ $r -ne 0 ]

echo; echo "== hs256-client-secret"
login hs256-client-secret hs; showauth hs; jwt show hs
echo "  discovery id_token_signing_alg_values_supported: $(jwt get hs.disc id_token_signing_alg_values_supported)"
check "hs256: header alg HS256, no kid" [ "$(jwt get hs.tok jwt.header)" = '{"alg":"HS256","typ":"JWT"}' ]
check "hs256: HMAC key is the client secret" jwt hs256 hs "$SECRET" "$BASE/hs256-client-secret"
jwt verify hs hs.jwks "$BASE/hs256-client-secret" || true

echo; echo "== rotation (two logins; the RP caches the JWKS fetched after the first)"
login rotation r1; showauth r1; jwt show r1
echo "  jwks after login 1: $(jwt kids r1.jwks)"
check "rotation: login 1 signed by rot-1" [ "$(jwt get r1.tok jwt.header.kid)" = rot-1 ]
check "rotation: login 1 verifies with the JWKS" jwt verify r1 r1.jwks "$BASE/rotation"
login rotation r2; showauth r2; jwt show r2
echo "  jwks after login 2: $(jwt kids r2.jwks)"
check "rotation: login 2 signed by rot-2" [ "$(jwt get r2.tok jwt.header.kid)" = rot-2 ]
echo "  with the cached (login 1) JWKS:"; jwt verify r2 r1.jwks "$BASE/rotation" || true
check "rotation: login 2 verifies only with the refetched JWKS" jwt verify r2 r2.jwks "$BASE/rotation"
echo "  POST /rotation/_rotate -> $("${C[@]}" -X POST "$BASE/rotation/_rotate")"
"${C[@]}" "$BASE/rotation/jwks" > r3.jwks; echo "  jwks now: $(jwt kids r3.jwks)"
check "rotation: _rotate switched the JWKS to rot-3" [ "$(jwt get r3.jwks keys.0.kid)" = rot-3 ]

echo; echo "== kid-absent-one-key"
login kid-absent-one-key k1; showauth k1; jwt show k1
echo "  jwks:      $(jwt kids k1.jwks)"
check "kid-absent-one-key: no kid, verifies against the single key" jwt verify k1 k1.jwks "$BASE/kid-absent-one-key"

echo; echo "== iss-param-mismatch"
login iss-param-mismatch ip; showauth ip; jwt show ip
check "iss-param-mismatch: iss param is https://evil.example" [ "$(node -p 'new URL(process.argv[1]).searchParams.get("iss")' "$(cat ip.redirect)")" = https://evil.example ]
check "iss-param-mismatch: the ID token itself is fine" jwt verify ip ip.jwks "$BASE/iss-param-mismatch"

echo; echo "== token endpoint behaviour (good-rs256)"
authorize good-rs256 t1; redeem good-rs256 t1
check "client_secret_basic: 200" [ "$(cat t1.status)" = 200 ]
redeem good-rs256 t1; echo "  replayed code: HTTP $(cat t1.status) $(cat t1.tok)"
check "code is single use (invalid_grant)" [ "$(jwt get t1.tok error)" = invalid_grant ]
authorize good-rs256 t2; head -c 32 /dev/urandom | b64url > t2.verifier; redeem good-rs256 t2
echo "  wrong code_verifier: HTTP $(cat t2.status) $(cat t2.tok)"
check "wrong code_verifier -> invalid_grant" [ "$(jwt get t2.tok error)" = invalid_grant ]
authorize good-rs256 t3; redeem good-rs256 t3 -u "$CLIENT_ID:wrong"
echo "  wrong secret: HTTP $(cat t3.status) $(cat t3.tok)"
check "wrong secret -> 401 invalid_client" [ "$(cat t3.status) $(jwt get t3.tok error)" = "401 invalid_client" ]
authorize good-es256 t4; redeem good-es256 t4 --data-urlencode "client_id=$CLIENT_ID" --data-urlencode "client_secret=$SECRET"
check "client_secret_post: 200 (good-es256, alg $(jwt get t4.tok jwt.header.alg))" [ "$(cat t4.status)" = 200 ]
authorize good-rs256 t5; redeem good-rs256 t5 --data-urlencode "client_id=$CLIENT_ID"
check "none (client_id only, PKCE): 200" [ "$(cat t5.status)" = 200 ]
authorize good-rs256 t6 "&login_hint=alice"; redeem good-rs256 t6
check "login_hint=alice -> sub alice" [ "$(jwt get t6.tok jwt.payload.sub) $(jwt get t6.tok jwt.payload.email)" = "alice alice@example.test" ]
u=$("${C[@]}" -o /dev/null -w '%{redirect_url}' "$BASE/good-rs256/auth?response_type=code&client_id=$CLIENT_ID&redirect_uri=$CBE&scope=openid&state=s1")
echo "  auth without code_challenge -> $u"
check "no PKCE -> error redirect invalid_request" grep -q 'error=invalid_request' <<< "$u"

echo; echo "== summary of every scenario: one login each, deviations from a normal flow, and the verdict of a"
echo "   strict reference RP (discovery issuer, authorization error, iss parameter, token error, ID token via"
echo "   jose jwtVerify with issuer/audience/RS256+ES256/required sub,iat,exp + nonce, azp, iat-not-in-future,"
echo "   userinfo sub == ID token sub)"
mkdir all; cd all
for S in $SCENARIOS; do login "$S" "$S"; done
jwt summary "$BASE" $SCENARIOS
cd ..

# --- stdin EOF stops the server
exec 3>&-
for _ in $(seq 50); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
check "server exits when stdin closes" bash -c "! kill -0 $PID 2>/dev/null"
check "stdout held only the ready line" [ "$(wc -l < stdout.txt)" -eq 1 ]
echo "stderr of server ($(wc -l < stderr.txt) lines):"; sed 's/^/  | /' stderr.txt | head -20
if [ $FAILS -eq 0 ]; then echo "bad-selftest: all checks passed"; else echo "bad-selftest: $FAILS check(s) FAILED"; exit 1; fi
