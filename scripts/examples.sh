#!/usr/bin/env bash
# Runs every example in crates/umbilical/examples the way its doc comment
# says, and checks what it must print or return. Needs root for the sudo
# cases (a SKIP line says so otherwise); UMBILICAL_TEST_USER (set by
# scripts/launchers.sh) for the refusal case.
set -uo pipefail
cd "$(dirname "$0")/.."

fail=0
check() { # NAME EXPECTED_RC CMD... (bounded: a hang fails, exit 124)
  local name=$1 want=$2; shift 2
  timeout 120 "$@"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then echo "example ok: $name (exit $rc)"; else echo "example FAILED: $name: exit $rc, expected $want"; fail=1; fi
}

cargo build -q --locked -p umbilical --examples --features tokio || exit 1
ex=target/debug/examples
check "conversation" 0 "$ex/conversation"
check "wrapper_exits_at_once" 0 "$ex/wrapper_exits_at_once"
check "async_conversation" 0 "$ex/async_conversation"

for engine in docker podman; do
  var="UMBILICAL_TEST_$(echo "$engine" | tr a-z A-Z)_CONTAINER"
  if [ -n "${!var:-}" ]; then
    check "in_container $engine" 0 "$ex/in_container" "$engine" "${!var}"
    if [ -n "${UMBILICAL_TEST_STATIC_SHIM:-}" ]; then
      check "in_container $engine, with the shim" 0 "$ex/in_container" "$engine" "${!var}" "$UMBILICAL_TEST_STATIC_SHIM"
    else
      echo "SKIP: in_container $engine with the shim: UMBILICAL_TEST_STATIC_SHIM unset (scripts/test.sh builds it)"
    fi
  else
    echo "SKIP: in_container $engine: $var unset (scripts/containers.sh start)"
  fi
done

if [ "$(id -u)" -eq 0 ] && command -v sudo >/dev/null; then
  dir=$(mktemp -d)
  check "conversation --sudo" 0 "$ex/conversation" --sudo
  check "save_as_root: saved" 0 "$ex/save_as_root" "$dir/saved.txt" "hello root"
  if [ "$(cat "$dir/saved.txt")" != "hello root" ]; then echo "example FAILED: save_as_root wrote $(cat "$dir/saved.txt")"; fail=1; fi
  check "save_as_root: tee fails" 1 "$ex/save_as_root" "$dir/no/such/dir/file" "x"
  if [ -n "${UMBILICAL_TEST_USER:-}" ]; then
    # The refusal, told apart (77): the test user has no sudo rights.
    chmod 0755 "$dir"
    check "save_as_root: sudo refuses" 77 su "$UMBILICAL_TEST_USER" -s /bin/sh -c "$PWD/$ex/save_as_root $dir/refused.txt x"
  else
    echo "SKIP: save_as_root refused: UMBILICAL_TEST_USER unset (scripts/launchers.sh start)"
  fi
  if [ -n "${UMBILICAL_TEST_PROMPT_CALLER:-}" ]; then
    # A caller with no terminal whose sudo rule asks for its password; the
    # example's callback answers it (the password on its stdin). The file
    # goes where only the target user may write.
    chown "$UMBILICAL_TEST_USER" "$dir" && chmod 0700 "$dir"
    # Through sudo and doas to the test user, su to the password user
    # (whose file goes in a directory of its own).
    sudir=$(mktemp -d) && chown "$UMBILICAL_TEST_PROMPT_USER" "$sudir" && chmod 0700 "$sudir"
    for via in sudo doas su; do
      if [ "$via" = su ]; then to=$UMBILICAL_TEST_PROMPT_USER; into=$sudir; else to=$UMBILICAL_TEST_USER; into=$dir; fi
      for mode in "" --async; do
        file="$into/gui-$via$mode.txt"
        out=$(timeout 120 setsid runuser -u "$UMBILICAL_TEST_PROMPT_CALLER" -- "$PWD/$ex/gui_elevation" $mode \
          --via "$via" --user "$to" "$file" "hello gui$mode" < "$UMBILICAL_TEST_PROMPT_PASSWORD_FILE")
        rc=$?
        if [ "$rc" -eq 0 ] && [ "$(cat "$file")" = "hello gui$mode" ]; then
          echo "example ok: gui_elevation --via $via $mode (saved with the password from the callback)"
        else
          echo "example FAILED: gui_elevation --via $via $mode: exit $rc; $out"; fail=1
        fi
        if [ "$mode" = --async ]; then
          ticks=$(printf '%s\n' "$out" | sed -n 's/^the runtime kept serving: \([0-9]*\) ticks.*/\1/p')
          # The handler sleeps 1 s; a ticker every 50 ms: a blocked
          # runtime would show none.
          if [ "${ticks:-0}" -ge 10 ]; then echo "example ok: gui_elevation --via $via --async: $ticks ticks during the prompt"
          else echo "example FAILED: gui_elevation --via $via --async: the runtime was blocked (${ticks:-no} ticks)"; fail=1; fi
        fi
      done
    done
    rm -rf "$sudir"
    # An installer's session: one password, many steps as the test user.
    sessdir=$(mktemp -d) && chown "$UMBILICAL_TEST_USER" "$sessdir" && chmod 0700 "$sessdir"
    out=$(timeout 120 setsid runuser -u "$UMBILICAL_TEST_PROMPT_CALLER" -- "$PWD/$ex/session" \
      --user "$UMBILICAL_TEST_USER" "$sessdir" 20 < "$UMBILICAL_TEST_PROMPT_PASSWORD_FILE")
    rc=$?
    owned=$(find "$sessdir" -name 'step-*.txt' -user "$UMBILICAL_TEST_USER" | wc -l)
    if [ "$rc" -eq 0 ] && [ "$owned" -eq 20 ] && printf '%s\n' "$out" | grep -q '^asked 1 time(s)'; then
      echo "example ok: session: 20 steps as $UMBILICAL_TEST_USER, one password prompt ($out)"
    else
      echo "example FAILED: session: exit $rc, $owned of 20 files as $UMBILICAL_TEST_USER; $out"; fail=1
    fi
    rm -rf "$sessdir"
    check "gui_elevation: a wrong password is refused" 77 sh -c \
      "echo wrong | setsid runuser -u $UMBILICAL_TEST_PROMPT_CALLER -- $PWD/$ex/gui_elevation --user $UMBILICAL_TEST_USER $dir/wrong.txt x"
  else
    echo "SKIP: gui_elevation: UMBILICAL_TEST_PROMPT_CALLER unset (scripts/launchers.sh start)"
  fi
  rm -rf "$dir"
else
  echo "SKIP: the sudo examples (conversation --sudo, save_as_root): need root and sudo"
fi
exit $fail
