#!/usr/bin/env bash
# Install the pinned Zig toolchain (PyPI's ziglang wheel) into
# <repo>/.tools/zig (idempotent) and print the path of the zig binary.
# scripts/pack.sh builds the prebuilt native parts with `zig cc`: one
# compiler for x86_64 and aarch64, glibc 2.28 and musl, from any Linux host.
# Usage: scripts/install-zig.sh      ZIG_VERSION=x.y.z scripts/install-zig.sh
set -euo pipefail

ZIG_VERSION="${ZIG_VERSION:-0.15.2}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/lib/wheel-tool.sh"
prefix="$repo/.tools/zig"

# the wheel's ziglang/ directory is the toolchain (zig and its lib/)
layout() {
  mv "$1/ziglang" "$2/ziglang"
  wheel_tool_expect zig "$ZIG_VERSION" "$("$2/ziglang/zig" version)"
}

if ! wheel_tool_current "$prefix" "$ZIG_VERSION" || [[ ! -x "$prefix/ziglang/zig" ]]; then
  wheel_tool_install "ziglang==$ZIG_VERSION" "$prefix" "$ZIG_VERSION" layout
fi
echo "$prefix/ziglang/zig"
