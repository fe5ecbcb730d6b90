#!/usr/bin/env bash
# Builds the workspace for x86_64-pc-windows-gnu and runs its tests for real
# under Wine (see docs/testing.md for the recipe and for what
# Wine 8 does not honour). Installs what it needs as root.
#
# `--build-only`: the installs, the Wine prefix and every build (tests,
# benches), nothing run; scripts/test.sh runs it in the background while
# the Linux tests run, so that this script's full run finds all built.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build_only=0
[ "${1:-}" = "--build-only" ] && build_only=1

need=()
for pkg in rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine64; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -ne 0 ]; then
  echo "test-windows: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

export WINEPREFIX="$top/target/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Debian's Wine makes a /tmp/wine-XXXXXX server directory per run whatever
# TMPDIR says: the ones this run made are removed at its end.
wine_dirs_before=$(ls -1d /tmp/wine-* 2>/dev/null | sort || true)
wine=/usr/lib/wine/wine64

# Rust's std imports ProcessPrng, which Wine 8 lacks: a DLL of our own.
mkdir -p target/wine
x86_64-w64-mingw32-gcc -shared -O2 -o target/wine/bcryptprimitives.dll \
  scripts/processprng.c scripts/processprng.def -ladvapi32
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
  echo "test-windows: creating the Wine prefix"
  timeout 300 "$wine" wineboot --init >/dev/null 2>&1 || true
  timeout 60 /usr/lib/wine/wineserver -w || true
fi
cp target/wine/bcryptprimitives.dll "$WINEPREFIX/drive_c/windows/system32/"

# One target directory for every build by Debian's toolchain (this one and
# scripts/test.sh's macOS and FreeBSD checks): the host's build scripts and
# proc macros (syn and the rest) are built once for all three targets.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$top/target/debian"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine"
# mingw's gcc leaves an empty ccXXXXXX file in its temporary directory for
# every link (seen: about 440 per run left in /tmp); they go under target/.
export TMPDIR="$top/target/windows/tmp"
mkdir -p "$TMPDIR"
status=0
# Doc tests are not run for this target (rustdoc would need the Windows
# linker and runner wired into each doctest); they run on Linux.
echo "SKIP: Windows doc tests: cross-compiled doctests are not run here; the same examples run on Linux"
# Build first and refuse warnings in our crates (clippy does not run for
# this target here, so the compiler's own lints are the check).
build_log=target/windows/build.log
mkdir -p target/windows
# The Node package's native module is type-checked (its Windows I/O path,
# every read and write through the runtime), not linked or run: napi-build
# links windows-gnu against a libnode.dll, which no package here has (an
# empty stand-in satisfies its build script for a check), and Node does not
# run under this Wine. Its tests run on Linux (scripts/test-node.sh).
/usr/bin/cargo test -Zbuild-std --workspace --exclude umbilical-node --locked --target x86_64-pc-windows-gnu --lib --bins --tests --no-run \
  2>&1 | tee "$build_log" | grep -E '^(warning|error)' -A6 || true
mkdir -p target/windows/libnode && : > target/windows/libnode/libnode.dll
LIBNODE_PATH="$PWD/target/windows/libnode" /usr/bin/cargo check -Zbuild-std -p umbilical-node --locked \
  --target x86_64-pc-windows-gnu 2>&1 | tee -a "$build_log" | grep -E '^(warning|error)' -A6 || true
if grep -qE '^(warning|error)' "$build_log"; then
  echo "test-windows: the Windows build has warnings or errors (above)"
  status=1
fi
# Removes the /tmp/wine-* server directories this run made.
clean_wine_dirs() {
  /usr/lib/wine/wineserver -k 2>/dev/null || true
  timeout 30 /usr/lib/wine/wineserver -w 2>/dev/null || true
  for d in $(comm -13 <(echo "$wine_dirs_before") <(ls -1d /tmp/wine-* 2>/dev/null | sort || true)); do
    rm -rf -- "$d"
  done
}
if [ "$build_only" = 1 ]; then
  # The two benches below, as they are built there.
  /usr/bin/cargo bench -Zbuild-std -p umbilical --features tokio --bench compare --bench async_children --locked \
    --target x86_64-pc-windows-gnu --no-run || status=$?
  clean_wine_dirs
  exit $status
fi
/usr/bin/cargo test -Zbuild-std --workspace --exclude umbilical-node --locked --target x86_64-pc-windows-gnu --lib --bins --tests --no-fail-fast \
  -- --test-threads=2 || status=$?
# The harness's Windows row: throughput against std's Command (ratio only).
# Built with the async layer's feature as the async bench is (one release
# build of the library for both; the rows use the blocking API).
/usr/bin/cargo bench -Zbuild-std -p umbilical --features tokio --bench compare --locked --target x86_64-pc-windows-gnu \
  -- --quick || status=$?
# The Windows docs (RunAs, create_no_window, the async layer's Windows
# side) build without warnings.
RUSTDOCFLAGS="-D warnings" /usr/bin/cargo doc -Zbuild-std -p umbilical --features tokio --no-deps --locked \
  --target x86_64-pc-windows-gnu || status=$?
# The async API against tokio::process (which runs its pipes on the
# blocking pool here): wall time, memory and threads, ratio only.
/usr/bin/cargo bench -Zbuild-std -p umbilical --features tokio --bench async_children --locked \
  --target x86_64-pc-windows-gnu -- --quick || status=$?
clean_wine_dirs
exit $status
