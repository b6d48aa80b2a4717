#!/usr/bin/env bash
# Manual self test of the test IdP (server.mjs): throwaway CA + leaf for 127.0.0.1 in a
# temp dir, two providers ("main": basic/post/none, "basic-only": basic), then with curl:
# discovery, and authorization code + PKCE flows (login_hint auto-login, no cookie jar)
# for RS256/PS256/ES256/EdDSA clients, token exchange with each auth method, ID token
# checked (signature against the JWKS via jose, iss, aud, nonce) and printed.
# Needs: node (+ `npm ci` in this dir), openssl, curl. Usage: bash selftest.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/idp-selftest.XXXXXX)
trap 'exec 3>&- 2>/dev/null || true; sleep 0.3; rm -rf "$T"' EXIT
cd "$T"

# --- TLS: CA + leaf for IP 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 \
  -subj "/CN=idp selftest CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
  -extfile ext.cnf -out server.pem 2>/dev/null

CB=https://127.0.0.1:1/cb
cat > config.json <<EOF
{
  "cert": "$T/server.pem",
  "key": "$T/server-key.pem",
  "providers": [
    { "name": "main",
      "authMethods": ["client_secret_basic", "client_secret_post", "none"],
      "clients": [
        { "client_id": "rs256-basic", "client_secret": "s3cret-rs", "token_endpoint_auth_method": "client_secret_basic",
          "redirect_uris": ["$CB"], "id_token_signed_response_alg": "RS256" },
        { "client_id": "ps256-basic", "client_secret": "s3cret-ps", "token_endpoint_auth_method": "client_secret_basic",
          "redirect_uris": ["$CB"], "id_token_signed_response_alg": "PS256" },
        { "client_id": "es256-post", "client_secret": "s3cret-es", "token_endpoint_auth_method": "client_secret_post",
          "redirect_uris": ["$CB"], "id_token_signed_response_alg": "ES256" },
        { "client_id": "eddsa-none", "token_endpoint_auth_method": "none",
          "redirect_uris": ["$CB"], "id_token_signed_response_alg": "EdDSA" }
      ] },
    { "name": "basic-only",
      "authMethods": ["client_secret_basic"],
      "clients": [
        { "client_id": "bo", "client_secret": "s3cret-bo", "token_endpoint_auth_method": "client_secret_basic",
          "redirect_uris": ["$CB"], "id_token_signed_response_alg": "RS256" }
      ] }
  ]
}
EOF

# --- start; stdin is a FIFO we hold open on fd 3 (closing it must stop the server)
mkfifo stdin.fifo
node "$HERE/server.mjs" config.json < stdin.fifo > stdout.txt 2> stderr.txt &
PID=$!
exec 3> stdin.fifo
for _ in $(seq 100); do [ -s stdout.txt ] && break; sleep 0.1; done
READY=$(head -n1 stdout.txt)
echo "ready line: $READY"
PORT=$(node -e 'console.log(JSON.parse(process.argv[1]).port)' "$READY")
BASE=https://127.0.0.1:$PORT
C=(curl -sS --cacert "$T/ca.pem")

FAILS=0
check() { if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; FAILS=$((FAILS+1)); fi; }
json() { node -e 'let v=JSON.parse(require("fs").readFileSync(0,"utf8")); for (const k of process.argv[1].split(".")) v=v?.[k]; console.log(typeof v==="string"?v:JSON.stringify(v))' "$1"; }

# --- discovery
for P in main basic-only; do
  "${C[@]}" "$BASE/$P/.well-known/openid-configuration" > disc-$P.json
  echo "[$P] issuer=$(json issuer < disc-$P.json) auth_methods=$(json token_endpoint_auth_methods_supported < disc-$P.json)"
  check "[$P] issuer is exactly $BASE/$P" "[ \"\$(json issuer < disc-$P.json)\" = '$BASE/$P' ]"
done
echo "[main] id_token algs=$(json id_token_signing_alg_values_supported < disc-main.json) pkce=$(json code_challenge_methods_supported < disc-main.json) iss_param=$(json authorization_response_iss_parameter_supported < disc-main.json)"
echo "[main] endpoints: auth=$(json authorization_endpoint < disc-main.json) token=$(json token_endpoint < disc-main.json) jwks=$(json jwks_uri < disc-main.json) userinfo=$(json userinfo_endpoint < disc-main.json)"
"${C[@]}" "$(json jwks_uri < disc-main.json)" > jwks-main.json; [ -n "${SHOW_DISCOVERY:-}" ] && cat disc-main.json && echo
echo "[main] jwks: $(node -e 'for (const k of JSON.parse(require("fs").readFileSync(0)).keys) process.stdout.write(`${k.kty}/${k.crv ?? Buffer.from(k.n,"base64url").length*8+"bit"} kid=${k.kid}${k.d ? " PRIVATE!" : ""}  `)' < jwks-main.json)"
check "[main] jwks has no private parts" "! grep -q '\"d\"' jwks-main.json"
check "[basic-only] token_endpoint_auth_methods_supported == [client_secret_basic]" \
  "[ \"\$(json token_endpoint_auth_methods_supported < disc-basic-only.json)\" = '[\"client_secret_basic\"]' ]"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# flow PROVIDER CLIENT_ID SECRET METHOD LOGIN [COOKIEJAR]
flow() {
  local P=$1 ID=$2 SECRET=$3 METHOD=$4 LOGIN=$5 JAR=${6:-}
  local verifier challenge state nonce url loc code iss hops=0
  verifier=$(head -c 32 /dev/urandom | b64url)
  challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | b64url)
  state=st-$RANDOM; nonce=n-$RANDOM$RANDOM
  local jarargs=(); [ -n "$JAR" ] && jarargs=(-b "$JAR" -c "$JAR")
  url="$BASE/$P/auth?response_type=code&client_id=$ID&redirect_uri=$(node -p 'encodeURIComponent(process.argv[1])' "$CB")&scope=openid%20email%20profile&state=$state&nonce=$nonce&code_challenge=$challenge&code_challenge_method=S256&login_hint=$LOGIN"
  local chain="auth"
  while :; do
    loc=$("${C[@]}" "${jarargs[@]}" -o /dev/null -w '%{http_code} %{redirect_url}' "$url")
    [[ $loc == 30[0-9]\ * ]] || { echo "FAIL - [$P/$ID] unexpected response: $loc"; FAILS=$((FAILS+1)); return; }
    url=${loc#* }
    [[ $url == "$CB"* ]] && break
    chain="$chain -> ${url#"$BASE"}"
    hops=$((hops+1)); [ $hops -lt 10 ] || { echo "FAIL - too many redirects"; FAILS=$((FAILS+1)); return; }
  done
  echo "[$P/$ID] redirects: $chain -> ${url%%\?*}?$(node -p 'Array.from(new URL(process.argv[1]).searchParams.keys()).join("&")' "$url")"
  code=$(node -p 'new URL(process.argv[1]).searchParams.get("code")' "$url")
  iss=$(node -p 'new URL(process.argv[1]).searchParams.get("iss")' "$url")
  check "[$P/$ID] state echoed, iss=$iss" "[ \"\$(node -p 'new URL(process.argv[1]).searchParams.get(\"state\")' '$url')\" = '$state' ] && [ '$iss' = '$BASE/$P' ]"
  local auth=()
  case $METHOD in
    client_secret_basic) auth=(-u "$ID:$SECRET") ;;
    client_secret_post) auth=(--data-urlencode "client_id=$ID" --data-urlencode "client_secret=$SECRET") ;;
    none) auth=(--data-urlencode "client_id=$ID") ;;
  esac
  "${C[@]}" "${auth[@]}" -d grant_type=authorization_code --data-urlencode "code=$code" \
    --data-urlencode "redirect_uri=$CB" --data-urlencode "code_verifier=$verifier" \
    "$BASE/$P/token" > tok.json
  if ! grep -q id_token tok.json; then echo "FAIL - [$P/$ID] token ($METHOD): $(cat tok.json)"; FAILS=$((FAILS+1)); return; fi
  "${C[@]}" "$(json jwks_uri < disc-$P.json)" > jwks.json
  (cd "$HERE" && node --input-type=module -e '
    import { readFileSync } from "node:fs";
    import { jwtVerify, createLocalJWKSet, decodeProtectedHeader } from "jose";
    const [tokFile, jwksFile, iss, aud, nonce, alg] = process.argv.slice(1);
    const { id_token } = JSON.parse(readFileSync(tokFile, "utf8"));
    const h = decodeProtectedHeader(id_token);
    const { payload: p } = await jwtVerify(id_token, createLocalJWKSet(JSON.parse(readFileSync(jwksFile, "utf8"))), { issuer: iss, audience: aud, algorithms: [alg] });
    if (p.nonce !== nonce) throw new Error("nonce mismatch");
    console.log(`  id_token header: alg=${h.alg} kid=${h.kid}`);
    console.log(`  id_token payload: sub=${p.sub} email=${p.email} email_verified=${p.email_verified} name=${p.name} nonce=${p.nonce} iss=${p.iss} aud=${p.aud}`);
  ' "$T/tok.json" "$T/jwks.json" "$BASE/$P" "$ID" "$nonce" "$EXPECT_ALG") \
    && echo "ok   - [$P/$ID] token via $METHOD, id_token verified ($EXPECT_ALG, iss, aud, nonce)" \
    || { echo "FAIL - [$P/$ID] id_token verification"; FAILS=$((FAILS+1)); }
  local at; at=$(json access_token < tok.json)
  echo "  userinfo: $("${C[@]}" -H "Authorization: Bearer $at" "$BASE/$P/me")"
}

EXPECT_ALG=RS256 flow main rs256-basic s3cret-rs client_secret_basic alice
EXPECT_ALG=PS256 flow main ps256-basic s3cret-ps client_secret_basic alice
EXPECT_ALG=ES256 flow main es256-post s3cret-es client_secret_post alice
EXPECT_ALG=EdDSA flow main eddsa-none "" none unverified-bob
EXPECT_ALG=RS256 flow basic-only bo s3cret-bo client_secret_basic carol
echo "# with a cookie jar, same jar for two different users (no sticky SSO session):"
EXPECT_ALG=RS256 flow main rs256-basic s3cret-rs client_secret_basic dave "$T/jar.txt"
EXPECT_ALG=RS256 flow main rs256-basic s3cret-rs client_secret_basic erin "$T/jar.txt"

# --- negative checks
r=$("${C[@]}" -o /dev/null -w '%{redirect_url}' "$BASE/main/auth?response_type=code&client_id=rs256-basic&redirect_uri=$CB&scope=openid&login_hint=x")
check "no code_challenge -> error redirect ($(node -p 'new URL(process.argv[1]).searchParams.get("error_description")' "$r"))" "[[ '$r' == *error=invalid_request* ]]"
r=$("${C[@]}" -d grant_type=authorization_code -d code=x -d client_id=bo -d client_secret=s3cret-bo "$BASE/basic-only/token")
check "basic-only rejects client_secret_post: $r" "[[ '$r' == *invalid_client* ]]"
r=$("${C[@]}" -o /dev/null -w '%{http_code} %{redirect_url}' "$BASE/main/auth?response_type=code&client_id=rs256-basic&redirect_uri=$CB&scope=openid&code_challenge=$(printf x | openssl dgst -sha256 -binary | b64url)&code_challenge_method=S256")
p=$("${C[@]}" "${r#* }")
check "no login_hint -> login form page" "[[ '$p' == *'<form method=\"post\"'* ]]"

# --- stdin EOF stops the server
exec 3>&-
for _ in $(seq 50); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
check "server exits when stdin closes" "! kill -0 $PID 2>/dev/null"
check "stdout held only the ready line" "[ \$(wc -l < stdout.txt) -eq 1 ]"
echo "stderr of server ($(wc -l < stderr.txt) lines):"; sed 's/^/  | /' stderr.txt | head -20
if [ $FAILS -eq 0 ]; then echo "selftest: all checks passed"; else echo "selftest: $FAILS check(s) FAILED"; exit 1; fi
