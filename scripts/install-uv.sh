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
# the uv wheel carries static binaries: uv and uvx
CHECK_VERSION_ARGS=--version exec bash "$repo/scripts/install-pypi-binary.sh" uv "$UV_VERSION" "$repo/.tools/uv" uv uvx
