#!/usr/bin/env bash
# Runs every test of keystead on a fresh machine. Installs what the tests need
# (idempotently), then runs the unit/storage suites with nextest and the
# integration binary with cargo test (its fixtures are shared across threads).
# Under CI=true a missing prerequisite fails the run loudly; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

apt_install() {
  # Only touch apt when something is missing.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
}

# --- system tools -------------------------------------------------------------
command -v node >/dev/null || apt_install nodejs npm
command -v npm >/dev/null || apt_install npm
command -v psql >/dev/null || apt_install postgresql-client
command -v openssl >/dev/null || apt_install openssl
command -v python3 >/dev/null || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
# the browser tests drive Debian's chromium (never a downloaded browser)
[ -x /usr/bin/chromium ] || apt_install chromium

# --- PostgreSQL (the storage suite and one server test run against it) -----------
PG_URL="${KEYSTEAD_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export KEYSTEAD_TEST_POSTGRES_URL="$PG_URL"
if ! psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    # wait until it answers (at most 30 s), not a fixed time
    for _ in $(seq 60); do
      psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  psql "$PG_URL" -qtAc 'select 1' >/dev/null 2>&1 \
    || die "PostgreSQL is not reachable at $PG_URL (set KEYSTEAD_TEST_POSTGRES_URL); the storage suite needs it"
fi

# Databases left by earlier runs (each run creates its own).
psql "$PG_URL" -qtAc "select datname from pg_database where datname like 'ks\_it\_%' or datname like 'ks\_test\_%'" \
  | while read -r db; do [ -n "$db" ] && psql "$PG_URL" -qc "drop database if exists $db" >/dev/null 2>&1 || true; done

# --- npm packages of the test IdPs --------------------------------------------------
for d in tests/idp tests/verify tests/browser; do
if [ ! -d $d/node_modules ] || [ $d/package-lock.json -nt $d/node_modules/.package-lock.json ]; then
  say "npm ci ($d)"
  (cd $d && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
done

# --- self-tests of the test tools: the independent signature verifier and the
# misbehaving IdP must themselves tell good from bad --------------------------------
say "self-tests of tests/verify and the misbehaving IdP"
(cd tests/verify && node selftest.mjs)
bash tests/idp/bad-selftest.sh

# --- moto, the AWS KMS API server of the aws-kms tests (PyPI, pinned) ----------------
bash tests/kms/setup.sh

# --- Rust tests ---------------------------------------------------------------------
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if cargo nextest --version >/dev/null 2>&1; then
  say "unit and storage tests (nextest)"
  cargo nextest run --workspace --no-fail-fast -E 'not binary(it)'
else
  [ "${CI:-}" = "true" ] && die "cargo-nextest is not installed"
  say "unit and storage tests (cargo test; install cargo-nextest for faster runs)"
  cargo test --workspace --lib --bins
fi
say "integration tests (real keystead, oidc-provider over HTTPS, PostgreSQL, chromium)"
cargo test -p keystead --test it -- --test-threads="${IT_THREADS:-4}"
say "property-based API test (schemathesis against /openapi.json)"
bash tests/schemathesis/run.sh
