#!/usr/bin/env bash
# Install the pinned Zig toolchain (PyPI's ziglang wheel) into
# <repo>/.tools/zig (idempotent) and print the path of the zig binary.
# scripts/pack.sh builds the prebuilt native parts with `zig cc`: one
# compiler for x86_64 and aarch64, glibc 2.28 and musl, from any Linux host.
# Usage: scripts/install-zig.sh      ZIG_VERSION=x.y.z scripts/install-zig.sh
set -euo pipefail

ZIG_VERSION="${ZIG_VERSION:-0.15.2}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$repo/.tools/zig"
zig="$prefix/ziglang/zig"
stamp="$prefix/.version"

if [[ -x "$zig" && -f "$stamp" && "$(cat "$stamp")" == "$ZIG_VERSION" ]]; then
  echo "$zig"
  exit 0
fi

python="${PYTHON:-python3}"
mkdir -p "$repo/.tools"
tmp="$(mktemp -d "$repo/.tools/.zig-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
  --only-binary=:all: --target "$tmp/prefix" "ziglang==$ZIG_VERSION" >&2
got="$("$tmp/prefix/ziglang/zig" version)"
if [[ "$got" != "$ZIG_VERSION" ]]; then
  echo "install-zig: expected zig $ZIG_VERSION, got $got" >&2
  exit 1
fi
echo "$ZIG_VERSION" > "$tmp/prefix/.version"
rm -rf "$prefix.old"
[[ -e "$prefix" ]] && mv "$prefix" "$prefix.old"
mv "$tmp/prefix" "$prefix"
rm -rf "$prefix.old"
echo "$zig"
