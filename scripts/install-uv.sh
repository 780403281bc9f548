#!/usr/bin/env bash
# Install the pinned uv that velo's uv support and its tests use, into
# <repo>/.tools/uv (idempotent), and print the path of the uv binary.
#
# velo finds uv via $VELO_UV, else <repo>/.tools/uv/bin/uv, else PATH.
# Usage: scripts/install-uv.sh            (prints the path of the uv binary)
#        UV_VERSION=x.y.z scripts/install-uv.sh   (another version, for trying one out)
set -euo pipefail

UV_VERSION="${UV_VERSION:-0.13.9}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/lib/wheel-tool.sh"
prefix="$repo/.tools/uv"
uv_bin="$prefix/bin/uv"

# The uv wheel carries a static binary at <data>/scripts/uv; pip --target puts
# it under bin/.
layout() {
  mkdir -p "$2/bin"
  local found uvx_found
  found="$(find "$1" -type f -name uv -perm -u+x | head -n1)"
  if [[ -z "$found" ]]; then
    echo "install-uv: uv binary not found in the uv==$UV_VERSION wheel" >&2
    exit 1
  fi
  cp "$found" "$2/bin/uv"
  uvx_found="$(find "$1" -type f -name uvx -perm -u+x | head -n1)"
  [[ -n "$uvx_found" ]] && cp "$uvx_found" "$2/bin/uvx"
  chmod 0755 "$2/bin/"*
  wheel_tool_expect uv "$UV_VERSION" "$("$2/bin/uv" --version | awk '{print $2}')"
}

if ! wheel_tool_current "$prefix" "$UV_VERSION" || [[ ! -x "$uv_bin" ]]; then
  wheel_tool_install "uv==$UV_VERSION" "$prefix" "$UV_VERSION" layout
fi
echo "$uv_bin"
