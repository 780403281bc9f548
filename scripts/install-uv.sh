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
prefix="$repo/.tools/uv"
uv_bin="$prefix/bin/uv"
stamp="$prefix/.version"

if [[ -x "$uv_bin" && -f "$stamp" && "$(cat "$stamp")" == "$UV_VERSION" ]]; then
  echo "$uv_bin"
  exit 0
fi

python="${PYTHON:-python3}"
mkdir -p "$repo/.tools"
tmp="$(mktemp -d "$repo/.tools/.uv-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# The uv wheel carries a static binary at <data>/scripts/uv; pip --target puts
# it under bin/. Install into a scratch dir, then swap it in whole.
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
  --only-binary=:all: --target "$tmp/target" "uv==$UV_VERSION" >&2
mkdir -p "$tmp/prefix/bin"
found="$(find "$tmp/target" -type f -name uv -perm -u+x | head -n1)"
if [[ -z "$found" ]]; then
  echo "install-uv: uv binary not found in the uv==$UV_VERSION wheel" >&2
  exit 1
fi
cp "$found" "$tmp/prefix/bin/uv"
uvx_found="$(find "$tmp/target" -type f -name uvx -perm -u+x | head -n1)"
[[ -n "$uvx_found" ]] && cp "$uvx_found" "$tmp/prefix/bin/uvx"
chmod 0755 "$tmp/prefix/bin/"*
got="$("$tmp/prefix/bin/uv" --version | awk '{print $2}')"
if [[ "$got" != "$UV_VERSION" ]]; then
  echo "install-uv: expected uv $UV_VERSION, got $got" >&2
  exit 1
fi
echo "$UV_VERSION" > "$tmp/prefix/.version"
rm -rf "$prefix.old"
[[ -e "$prefix" ]] && mv "$prefix" "$prefix.old"
mv "$tmp/prefix" "$prefix"
rm -rf "$prefix.old"
echo "$uv_bin"
