#!/usr/bin/env bash
# Installs what the test suite needs on a Debian 12 machine, as root.
# Idempotent: packages already present are not fetched again.
#
#   rustc-web cargo-web rust-web-src  a second toolchain with std's source, to
#                                     type-check the macOS and FreeBSD code
#                                     (cargo -Zbuild-std); see
#                                     docs/testing.md
#   coreutils                         cat, sort, sha256sum used by the tests
#   nodejs (and npm where Debian
#   ships it apart)                   the Node package's build and tests
#                                     (bindings/node, scripts/test-node.sh)
#   jsonschema (PyPI)                 validates real --report files against
#                                     docs/report.schema.json
set -euo pipefail

if ! python3 -c "import jsonschema" 2>/dev/null; then
  echo "install-deps: installing jsonschema (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check jsonschema
fi

need=()
for pkg in rustc-web cargo-web rust-web-src coreutils; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${#need[@]}" -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root (apt-get install)" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
