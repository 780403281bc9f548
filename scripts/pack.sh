#!/usr/bin/env bash
# Build everything and write every publishable tarball into pack/:
#   pack/velo-rift-<version>.tgz            the CLI (the esbuild bundle)
#   pack/velo-rift-linux-<cpu>-<libc>-<v>.tgz   the prebuilt addon + velo-mountd per platform
# Sets up first (scripts/setup.sh), then builds the native parts for
# linux x64/arm64 × glibc 2.28/musl with zig cc (PyPI's ziglang, into
# .tools/zig). Without Python/zig: PACK_HOST=1 packs this machine's platform only, with gcc.
# Publish with: for t in pack/*.tgz; do npm publish "$t"; done (platform packages first).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/setup.sh"
cd "$repo"
if [[ "${PACK_HOST:-}" == 1 ]]; then
  node scripts/pack.mjs --host
else
  zig="$(bash scripts/install-zig.sh)"
  node scripts/pack.mjs --zig "$zig" ${PACK_ONLY:+--only "$PACK_ONLY"}
fi
