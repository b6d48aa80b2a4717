#!/usr/bin/env bash
# Installs the reference relying party's node_modules (bench/reference-rp) from
# package-lock.json. Idempotent: does nothing when node_modules already matches the lock
# file and the running Node.js (a stamp file records both).
#
# better-sqlite3 is a native addon. Its prebuilt binaries come from GitHub, which this
# project's machines cannot reach, so it is compiled from source with node-gyp (needs
# python3, make, g++) against the Node.js headers installed on the machine (the nodejs
# package ships them in /usr/include/node), never against headers from nodejs.org:
#   npm_config_nodedir=/usr npm_config_build_from_source=true npm ci
# (npm warns 'Unknown env config "build-from-source"': that variable is read by
# better-sqlite3's prebuild-install step, which then skips its download.)
# The compile takes about 2 minutes of CPU.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"

command -v node >/dev/null || { echo "reference-rp/install.sh: node not found" >&2; exit 1; }
NODE_VERSION=$(node -p 'process.version')
STAMP_FILE=node_modules/.keystead-install-stamp
STAMP="$(sha256sum package-lock.json | cut -d' ' -f1) node=$NODE_VERSION abi=$(node -p 'process.versions.modules')"
if [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP" ] \
  && [ -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  exit 0
fi

# Headers of the running Node.js: <nodedir>/include/node/node_version.h with the same version.
header_version() {
  local h=$1/include/node/node_version.h
  [ -f "$h" ] || return 1
  awk '/define NODE_(MAJOR|MINOR|PATCH)_VERSION /{v[$2]=$3} END{printf "v%s.%s.%s", v["NODE_MAJOR_VERSION"], v["NODE_MINOR_VERSION"], v["NODE_PATCH_VERSION"]}' "$h"
}
NODEDIR=""
for d in "$(dirname "$(dirname "$(command -v node)")")" /usr /usr/local; do
  if [ "$(header_version "$d" || true)" = "$NODE_VERSION" ]; then NODEDIR=$d; break; fi
done
if [ -z "$NODEDIR" ]; then
  echo "reference-rp/install.sh: no Node.js $NODE_VERSION headers found (looked for include/node/node_version.h" >&2
  echo "  beside node, in /usr and in /usr/local). Install the headers of the installed Node.js from" >&2
  echo "  Debian's packages (nodesource's nodejs package ships them; Debian's own nodejs needs libnode-dev)." >&2
  exit 1
fi

echo "reference-rp/install.sh: npm ci, building better-sqlite3 from source against $NODEDIR/include/node ($NODE_VERSION)" >&2
npm_config_nodedir="$NODEDIR" npm_config_build_from_source=true \
  npm ci --no-audit --no-fund --loglevel=error >&2
node -e 'const D = require("better-sqlite3"); new D(":memory:").prepare("select 1").get();' \
  || { echo "reference-rp/install.sh: better-sqlite3 does not load" >&2; exit 1; }
printf '%s' "$STAMP" > "$STAMP_FILE"
