#!/usr/bin/env bash
# Installs moto's AWS-API server (PyPI, pinned) into tests/kms/.venv for the
# aws-kms key provider tests. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
VERSION=5.2.6
if [ ! -x .venv/bin/moto_server ] || [ "$(.venv/bin/python -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$VERSION" ]; then
  echo "==> installing moto[server] $VERSION into tests/kms/.venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "moto[server]==$VERSION"
fi
