#!/usr/bin/env bash
# The Node package (bindings/node): install (no dependencies from the
# registry: the lock file has none), build the native module and the shim
# with cargo, run its tests with Node's test runner, run the example the
# way a user does, and print the echo benchmark against child_process.
# Launcher tests use scripts/launchers.sh's environment when it is set
# (scripts/test.sh exports it) and print SKIP otherwise.
set -euo pipefail
cd "$(dirname "$0")/../bindings/node"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIP: the Node package: node and npm are not installed (apt-get install nodejs npm)"
  exit 0
fi
echo "node $(node --version), npm $(npm --version)"
npm ci --no-audit --no-fund
npm run build
npm run typecheck
npm test

# The example, as the README shows it: a file written as the test user,
# tee's failure and sudo's refusal told apart by exit code (0, 1, 3).
if [ "$(id -u)" -eq 0 ] && [ -n "${UMBILICAL_TEST_USER:-}" ]; then
  dir=$(mktemp -d /tmp/umbilical-node-example-XXXXXX)
  trap 'rm -rf "$dir"' EXIT
  chown "$UMBILICAL_TEST_USER" "$dir"
  echo saved | timeout 60 node examples/save-as-root.mjs "$dir/file" --via "sudo:$UMBILICAL_TEST_USER"
  [ "$(stat -c %U "$dir/file")" = "$UMBILICAL_TEST_USER" ] && [ "$(cat "$dir/file")" = saved ] \
    || { echo "the example did not write $dir/file as $UMBILICAL_TEST_USER"; exit 1; }
  rc=0; echo x | timeout 60 node examples/save-as-root.mjs /proc/no-such-dir/file --via "sudo:$UMBILICAL_TEST_USER" || rc=$?
  [ "$rc" = 1 ] || { echo "tee's failure: exit $rc, want 1"; exit 1; }
  rc=0; echo x | timeout 60 node examples/save-as-root.mjs "$dir/other" --via sudo:umbilical-no-such-user || rc=$?
  [ "$rc" = 3 ] || { echo "sudo's refusal: exit $rc, want 3"; exit 1; }
  echo "example save-as-root.mjs: saved, tee failed, sudo refused: as expected"
else
  echo "SKIP: example save-as-root.mjs: needs root and UMBILICAL_TEST_USER (scripts/launchers.sh start)"
fi

ECHO_ROUNDS=3 npm run --silent bench
