#!/usr/bin/env bash
# The main job on the bundled demo: velo npm install of a real project from the
# public registry into a store, then a second copy of it straight from the
# store, then the no-op. Uses a store of its own under demo/.velo-store unless
# VELO_HOME is set.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/setup.sh"
export VELO_HOME="${VELO_HOME:-$repo/demo/.velo-store}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$repo/demo" "$work/one"; rm -rf "$work/one/.velo-store" "$work/one/node_modules"
cp -r "$work/one" "$work/two"
echo "== velo npm install (store: $VELO_HOME)"
"$repo/bin/velo" npm install --prefix "$work/one"
echo "== a second project: every package from the store"
"$repo/bin/velo" npm ci --prefix "$work/two"
echo "== nothing changed: a no-op"
"$repo/bin/velo" npm ci --prefix "$work/two"
(cd "$work/two" && node index.js)
"$repo/bin/velo" status
