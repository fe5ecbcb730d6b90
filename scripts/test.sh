#!/usr/bin/env bash
# The whole test suite: formatting, lints, the Linux tests (unit, integration,
# CLI, doc tests), docs without warnings, and type-checks of the macOS and
# FreeBSD code paths. The README's test command; .ci/run calls it.
#
# Every step runs; a step that cannot run on this machine prints SKIP with
# the reason. The script fails if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name=$1; shift
  echo "=== $name"
  local start=$SECONDS
  if "$@"; then
    echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    echo "=== $name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

scripts/install-deps.sh || failed+=("install-deps")

# What was in /tmp before the run: the run must add nothing there.
tmp_before=$(ls -1d /tmp/umbilical-* 2>/dev/null | sort)

# Real launchers for the launcher tests: a test user, doas rule, sshd on
# loopback; real container engines: docker (a private dockerd) and podman,
# each with a busybox container. Each script stops exactly what it
# started; stop_services runs once, at the end or on an early exit.
services_stopped=0
stop_services() {
  [ "$services_stopped" = 1 ] && return
  services_stopped=1
  bash scripts/launchers.sh stop
  bash scripts/containers.sh stop
}
trap stop_services EXIT
if [ "$(id -u)" -eq 0 ] && launcher_env=$(bash scripts/launchers.sh start); then
  eval "$launcher_env"
else
  echo "SKIP: launcher set-up (needs root): the launcher tests will print SKIP for each launcher"
fi
container_start=$SECONDS
# An engine that cannot start says SKIP (stderr).
if container_env=$(bash scripts/containers.sh start); then
  eval "$container_env"
fi
echo "=== container engines started ($((SECONDS - container_start)) s)"
# The static shim that the container tests copy in (a glibc-less busybox
# image cannot run a dynamically linked one): the umbilical-shim binary,
# built the way Command::shim_source documents.
step "static umbilical-shim for containers" env RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build -p umbilical --bin umbilical-shim --locked --target x86_64-unknown-linux-gnu --target-dir target/static
export UMBILICAL_TEST_STATIC_SHIM="$PWD/target/static/x86_64-unknown-linux-gnu/debug/umbilical-shim"

# Other targets: compile-only, with Debian's toolchain rebuilding std.
cross_check() {
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/debian \
    /usr/bin/cargo check -Zbuild-std --workspace --all-targets --locked --target "$1" "${@:2}"
}
have_cross() { [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; }
have_nightly() { rustup toolchain list 2>/dev/null | grep -q '^nightly'; }
can_wine() { [ "$(id -u)" -eq 0 ] || { [ -x /usr/lib/wine/wine64 ] && [ -x /usr/bin/x86_64-w64-mingw32-gcc ]; }; }

# The later steps' builds, done in the background while the Linux tests
# run (their processes mostly wait: about 60% of both cores idle), at the
# idle scheduling class, so that a test's process always runs first: the
# Node module, the fuzz target, the other targets' checks, the Windows
# build and the benches. Each step still runs its own command and so its
# own build (then a no-op): a failure here only means that step builds it.
# Runs a command in the background at the idle scheduling class (nice 19
# alone where chrt --idle is refused), its output to the file $1; the
# prefix used is put in $idle_prefix, the pid in $!.
run_idle() {
  local log=$1; shift
  idle_prefix=(nice -n 19)
  chrt --idle 0 true 2>/dev/null && idle_prefix=(chrt --idle 0 nice -n 19)
  "${idle_prefix[@]}" "$@" > "$log" 2>&1 &
}

prebuild_pid=
prebuild() {
  cargo build --locked --release -p umbilical-node
  cargo build --locked --release -p umbilical --bin umbilical-shim
  if have_nightly && command -v cargo-fuzz >/dev/null; then
    (cd fuzz && cargo +nightly fuzz build decode)
  fi
  if have_cross; then
    cross_check aarch64-apple-darwin
    cross_check x86_64-unknown-freebsd
  fi
  can_wine && bash scripts/test-windows.sh --build-only
  cargo bench --locked -p umbilical --features tokio --bench compare --bench async_children --no-run
  cargo bench --locked -p umbilical-cli --bench relay --no-run
}
start_prebuild() {
  mkdir -p target
  run_idle target/prebuild.log bash -c "$(declare -f prebuild cross_check have_cross have_nightly can_wine); prebuild"
  prebuild_pid=$!
  echo "=== background builds started (pid $prebuild_pid, ${idle_prefix[*]}; log: target/prebuild.log)"
}
# Waits for the background builds; what they left unbuilt, the steps build.
wait_prebuild() {
  [ -n "$prebuild_pid" ] || return 0
  local start=$SECONDS rc=0
  wait "$prebuild_pid" || rc=$?
  prebuild_pid=
  echo "=== background builds done (waited $((SECONDS - start)) s; exit $rc: a step rebuilds what failed)"
}

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
# clippy sees Linux code only: the unsafe rules for every target's files.
step "unsafe only under sys/, each with a SAFETY comment (all targets)" python3 scripts/check-unsafe.py
step "layers: no module imports a layer above it (docs/ARCHITECTURE.md)" python3 scripts/check-layers.py
step "cargo test: build (Linux)" cargo test --workspace --locked --no-run
start_prebuild
step "cargo test (Linux: unit, integration, CLI, doc tests)" cargo test --workspace --locked
step "cargo doc without warnings" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
# The library alone, with and without the async layer: the workspace build
# above turns `tokio` on through the tests' dev-dependencies.
step "clippy: the library without features" cargo clippy -p umbilical --lib --locked -- -D warnings
step "doc tests with --features tokio" cargo test -p umbilical --doc --features tokio --locked
step "cargo doc --features tokio without warnings" env RUSTDOCFLAGS="-D warnings" cargo doc -p umbilical --no-deps --features tokio --locked

# The examples users come for, run and checked (scripts/examples.sh).
step "examples (crates/umbilical/examples)" bash scripts/examples.sh

# The Node package: built from the repository, tested with Node's runner.
step "Node package (bindings/node): build, tests, example, echo bench" bash scripts/test-node.sh

# The two published crates as crates.io would get them (the CLI built
# against the packaged library).
# Cargo unpacks the packaged crates for verification into CARGO_HOME and
# reuses an earlier unpack of the same name and version: a stale copy of
# our own crates would verify the CLI against old sources.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/umbilical-[0-9]* "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/umbilical-cli-[0-9]*
step "cargo package (umbilical, umbilical-cli)" cargo package --workspace --exclude umbilical-tests --exclude umbilical-node --locked --allow-dirty

# A short fuzz run of the control-protocol decoder (cargo-fuzz, nightly): a
# number of runs (about 120 s of one core here), not a time, since it runs
# in the background at the idle scheduling class while the Windows tests
# run (which leave about 40% of both cores idle): every run is made
# however much of a core it gets, bounded by FUZZ_SECONDS.
fuzz_runs=${FUZZ_RUNS:-22000000}
fuzz_decoder() {
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet || return 1
  local start=$SECONDS
  (cd fuzz && cargo +nightly fuzz run decode -- -runs="$fuzz_runs" -max_total_time="${FUZZ_SECONDS:-900}" \
    -rss_limit_mb=2048 2>&1 | tail -n 15)
  local rc=${PIPESTATUS[0]}
  echo "fuzz: $((SECONDS - start)) s in the background"
  return "$rc"
}
fuzz_pid=
start_fuzz() {
  run_idle target/fuzz.log bash -c "fuzz_runs=$fuzz_runs; $(declare -f fuzz_decoder); fuzz_decoder"
  fuzz_pid=$!
  echo "=== fuzzing started in the background (pid $fuzz_pid, ${idle_prefix[*]}; log: target/fuzz.log)"
}
wait_fuzz() {
  local rc=0
  wait "$fuzz_pid" || rc=$?
  cat target/fuzz.log
  return "$rc"
}
# docs.rs's build: nightly rustdoc with --cfg docsrs, which marks every
# OS- or feature-specific item ("Available on Unix only", ...).
docs_rs_build() {
  local out=target/docs-rs
  RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo +nightly doc -p umbilical --no-deps --features tokio \
    --locked --target-dir "$out" || return 1
  grep -q "Available on <strong>Unix" "$out/doc/umbilical/struct.ReadHalf.html" \
    && grep -q "Available on <strong>crate feature" "$out/doc/umbilical/struct.Command.html" \
    || { echo "the availability markers are missing"; return 1; }
}
if have_nightly; then
  step "docs as docs.rs builds them (nightly, --cfg docsrs, availability markers)" docs_rs_build
else
  echo "SKIP: docs.rs build: no nightly toolchain"
fi

if have_cross; then
  step "type-check aarch64-apple-darwin" cross_check aarch64-apple-darwin
  step "type-check x86_64-unknown-freebsd" cross_check x86_64-unknown-freebsd
else
  echo "SKIP: type-checks for macOS and FreeBSD: Debian's rustc-web/rust-web-src are not installed (scripts/install-deps.sh installs them as root)"
fi

wait_prebuild
if have_nightly; then
  start_fuzz
else
  echo "SKIP: fuzzing: no nightly toolchain (cargo-fuzz needs one)"
fi
# The Windows backend, built for x86_64-pc-windows-gnu and run under Wine.
if can_wine; then
  step "Windows tests under Wine" bash scripts/test-windows.sh
else
  echo "SKIP: Windows tests under Wine: wine64 and mingw-w64 are missing and installing them needs root"
fi
if [ -n "$fuzz_pid" ]; then
  step "fuzz the control-protocol decoder ($fuzz_runs runs; waited for here)" wait_fuzz
fi

# Speed against std, measured in the same run (prints figures and ratios;
# fails only if the harness itself fails); last, on a machine that runs
# nothing else (the background builds are done). The static shim the CLI carries
# (built by its build.rs for the tests above) gets rows of its own.
embedded_shim=target/embedded-shim/x86_64-unknown-linux-gnu/release/umbilical-embedded-shim
[ -x "$embedded_shim" ] && export UMBILICAL_BENCH_STATIC_SHIM="$PWD/$embedded_shim"
# The library built once for both benches (with the async layer's feature,
# which the compare rows do not use).
step "benchmark: umbilical vs std (quick)" cargo bench -p umbilical --features tokio --bench compare --locked -- --quick
step "benchmark: umbilical::tokio vs tokio::process, 1,000 children (quick)" cargo bench -p umbilical --features tokio --bench async_children --locked -- --quick
step "benchmark: umbilical run's relay vs cat (quick)" cargo bench -p umbilical-cli --bench relay --locked -- --quick

# Nothing the run started is left: the services' recorded pids end with
# stop_services, and then no process of the test user, no new
# /tmp/umbilical-* entry, no container of this run, no child of this
# script may remain.
recorded_pids=$(cat target/launchers/*.pid target/containers/docker/pid 2>/dev/null | tr -dc '0-9\n')
run_containers=$(sed -n 's/.*old_podman_c=\([^ ]*\).*/\1/p' target/containers/names 2>/dev/null)
stop_services
nothing_left_behind() {
  local bad=0 pid now new
  for pid in $recorded_pids; do
    if kill -0 "$pid" 2>/dev/null; then
      echo "a process the scripts started is still running: $(ps -o pid=,args= -p "$pid")"
      bad=1
    fi
  done
  # sshd's per-connection processes take a moment to go after the last
  # session: wait for them, bounded.
  for _ in $(seq 1 100); do
    id umbtest >/dev/null 2>&1 && pgrep -u umbtest >/dev/null || break
    sleep 0.1
  done
  if id umbtest >/dev/null 2>&1 && pgrep -u umbtest >/dev/null; then
    echo "processes of the test user are left:"
    ps -o pid,stat,args -u umbtest
    bad=1
  fi
  now=$(ls -1d /tmp/umbilical-* 2>/dev/null | sort)
  new=$(comm -13 <(echo "$tmp_before") <(echo "$now"))
  if [ -n "$new" ]; then
    echo "left in /tmp by this run:"
    echo "$new"
    bad=1
  fi
  if [ -n "$run_containers" ] && command -v podman >/dev/null \
    && timeout 30 podman ps -a --format '{{.Names}}' | grep -qxF "$run_containers"; then
    echo "the run's podman container $run_containers is left"
    bad=1
  fi
  if pgrep -P $$ -l | grep -v -e '^[0-9]* ps$' -e '^[0-9]* pgrep$' -e '^[0-9]* grep$' | grep -q .; then
    echo "children of scripts/test.sh are left:"
    pgrep -P $$ -l
    bad=1
  fi
  [ "$bad" = 0 ] && echo "nothing left: no recorded pid, no test-user process, no new /tmp entry, no container"
  return "$bad"
}
step "nothing the run started is left behind" nothing_left_behind

if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAILED steps: ${failed[*]}"
  exit 1
fi
echo "all steps passed"
