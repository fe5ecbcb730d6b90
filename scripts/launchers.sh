#!/usr/bin/env bash
# Sets up and tears down the real launchers the tests use, as root:
#   scripts/launchers.sh start   # prints the environment to export
#   scripts/launchers.sh stop
# start: installs sudo, opendoas, openssh-server and pkexec (with polkitd
# and dbus) if missing; starts the system bus and polkitd; creates the
# unprivileged user umbtest (account not locked, no password); writes a doas
# rule `permit nopass root as umbtest`; starts sshd on 127.0.0.1 on a free
# port with a generated host key, and a generated client key authorised for
# umbtest; for the prompt tests, users umbcaller and umbpw with a fresh
# random password (in target/launchers/prompt_password, root's only), a
# sudoers rule and a doas rule that ask umbcaller for it every time, a
# polkit rule that asks it for pkexec, and a third sshd that takes
# passwords only. Everything it makes lives under target/launchers/
# (plus the users, the rules in /etc/doas.conf, and the sudoers and polkit
# rule files, which stop removes). Only loopback is ever used.
# stop: ends the sshds, and the bus and polkitd if start had to start them
# (by the pids start recorded: never another run's or the system's), and
# removes target/launchers/.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/launchers"
user=umbtest
# The prompt tests' caller (its sudo rule asks for its password) and the
# user with a password that su and the password sshd ask for.
caller=umbcaller
pwuser=umbpw
sudoers=/etc/sudoers.d/umbilical-test-prompts
polkit_rule=/etc/polkit-1/rules.d/49-umbilical-test-prompts.rules

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (5 s at most) until something accepts connections on loopback
# port $1; says so and fails otherwise.
wait_listening() {
  for _ in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "launchers: nothing listens on 127.0.0.1:$1 after 5 s" >&2
  return 1
}

case "${1:-}" in
start)
  if [ "$(id -u)" -ne 0 ]; then
    echo "launchers: not root; cannot create users or start sshd" >&2
    exit 1
  fi
  need=()
  for pkg in sudo opendoas openssh-server openssh-client pkexec polkitd dbus; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  if [ "${#need[@]}" -ne 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
  usermod -p '*' "$user" # not locked ('!' would make sshd refuse it)
  # The prompt tests' caller may become $user with its password.
  for rule in "permit nopass root as $user" "permit $caller as $user"; do
    if ! grep -qxF "$rule" /etc/doas.conf 2>/dev/null; then
      echo "$rule" >> /etc/doas.conf
    fi
  done
  chmod 0400 /etc/doas.conf
  "$0" stop >/dev/null 2>&1 || true
  rm -rf "$dir" && mkdir -p "$dir" && chmod 0755 "$dir"
  # Prompts (issue #24): a caller whose sudo rule wants its password
  # (timestamp_timeout=0: every run asks), and a target user with a
  # password for su and the password sshd. One fresh random password per
  # start, in a file only root reads: never in an environment, where the
  # tests' scan of every process's environ would find it.
  for who in "$caller" "$pwuser"; do
    id "$who" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$who"
  done
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
  ( umask 077 && printf '%s\n' "$password" > "$dir/prompt_password" )
  printf '%s:%s\n' "$caller" "$password" "$pwuser" "$password" | chpasswd
  # Chains (ssh as the caller, then sudo to root on the "far" host) need
  # root without a password; to the test user it still asks. The password
  # user's sudo to root asks (ssh with a password, then sudo with one).
  {
    printf 'Defaults:%s timestamp_timeout=0\n%s ALL=(%s) ALL\n' "$caller" "$caller" "$user"
    printf '%s ALL=(root) NOPASSWD: ALL\n' "$caller"
    printf 'Defaults:%s timestamp_timeout=0\n%s ALL=(root) ALL\n' "$pwuser" "$pwuser"
  } > "$sudoers.tmp"
  chmod 0440 "$sudoers.tmp"
  visudo -c -q -f "$sudoers.tmp" && mv "$sudoers.tmp" "$sudoers"
  # pkexec asks the caller for its own password (polkitd rereads its rules
  # directory when it changes).
  mkdir -p "$(dirname "$polkit_rule")"
  cat > "$polkit_rule" <<RULE
polkit.addRule(function(action, subject) {
    if (action.id == "org.freedesktop.policykit.exec" && subject.user == "$caller") {
        return polkit.Result.AUTH_SELF;
    }
});
RULE
  # pkexec asks polkitd over the system bus. A machine restored from a
  # snapshot can carry a socket file and pid file in /run/dbus whose daemon
  # is gone ("Connection refused"), so ask the bus itself. GetId is a call
  # to the bus driver every policy allows (a Peer.Ping is refused by this
  # bus's policy: AccessDenied, which once made a live bus look dead).
  # Only a bus that does not answer is replaced, and only what this script
  # started is recorded (target/launchers/*.pid) for `stop` to end.
  bus_alive() {
    timeout 5 dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.GetId >/dev/null 2>&1
  }
  if ! bus_alive; then
    rm -f /run/dbus/system_bus_socket /run/dbus/pid
    mkdir -p /run/dbus
    dbus-daemon --system --fork --print-pid > "$dir/dbus.pid"
    for _ in $(seq 1 50); do bus_alive && break; sleep 0.1; done
  fi
  polkit_alive() {
    timeout 5 dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.NameHasOwner string:org.freedesktop.PolicyKit1 2>/dev/null | grep -q 'boolean true'
  }
  if ! polkit_alive; then
    /usr/lib/polkit-1/polkitd --no-debug </dev/null >/dev/null 2>&1 &
    echo $! > "$dir/polkitd.pid"
    for _ in $(seq 1 50); do polkit_alive && break; sleep 0.1; done
  fi
  # Export the pkexec switch only once a real pkexec run works; otherwise
  # the pkexec tests print SKIP with this reason.
  if pkexec_out=$(pkexec --user "$user" /usr/bin/id -un 2>&1 </dev/null) && [ "$pkexec_out" = "$user" ]; then
    pkexec_ok=1
  else
    pkexec_ok=0
    echo "launchers: pkexec does not work here: $pkexec_out" >&2
  fi
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys" && chmod 0644 "$dir/authorized_keys"
  port=$(free_port)
  cat > "$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $user $caller
CONF
  mkdir -p /run/sshd
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  wait_listening "$port" || exit 1
  # A second sshd, hardened: no stream-local forwarding, so the shim's
  # forwarded link is refused and only the in-band link can work.
  hardened_port=$(free_port)
  sed -e "s/^Port .*/Port $hardened_port/" -e "s|^PidFile .*|PidFile $dir/sshd-hardened.pid|" \
    "$dir/sshd_config" > "$dir/sshd_hardened_config"
  echo "AllowStreamLocalForwarding no" >> "$dir/sshd_hardened_config"
  /usr/sbin/sshd -f "$dir/sshd_hardened_config" -E "$dir/sshd-hardened.log"
  wait_listening "$hardened_port" || exit 1
  # A third sshd that takes passwords only (no keys), for the prompt tests.
  password_port=$(free_port)
  sed -e "s/^Port .*/Port $password_port/" -e "s|^PidFile .*|PidFile $dir/sshd-password.pid|" \
    -e "s/^PasswordAuthentication .*/PasswordAuthentication yes/" -e "s/^AllowUsers .*/AllowUsers $pwuser/" \
    "$dir/sshd_config" > "$dir/sshd_password_config"
  echo "PubkeyAuthentication no" >> "$dir/sshd_password_config"
  /usr/sbin/sshd -f "$dir/sshd_password_config" -E "$dir/sshd-password.log"
  wait_listening "$password_port" || exit 1
  echo "export UMBILICAL_TEST_USER=$user"
  echo "export UMBILICAL_TEST_PROMPT_CALLER=$caller"
  echo "export UMBILICAL_TEST_CHAIN_SSH_USER=$caller"
  echo "export UMBILICAL_TEST_PROMPT_USER=$pwuser"
  echo "export UMBILICAL_TEST_PROMPT_PASSWORD_FILE=$dir/prompt_password"
  echo "export UMBILICAL_TEST_SSH_PASSWORD_PORT=$password_port"
  echo "export UMBILICAL_TEST_SSH_PORT=$port"
  echo "export UMBILICAL_TEST_SSH_HARDENED_PORT=$hardened_port"
  echo "export UMBILICAL_TEST_SSH_KEY=$dir/client_key"
  if [ "$pkexec_ok" = 1 ]; then
    echo "export UMBILICAL_TEST_PKEXEC=1"
  else
    echo "export UMBILICAL_TEST_PKEXEC_SKIP=$(printf %q "pkexec does not work here: $pkexec_out")"
  fi
  ;;
stop)
  # Ends exactly what `start` started (the pids it recorded), waits for
  # each to go (bounded), and leaves nothing under target/launchers.
  for name in sshd sshd-hardened sshd-password polkitd dbus; do
    file="$dir/$name.pid"
    [ -f "$file" ] || continue
    pid=$(tr -dc 0-9 < "$file")
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    # The bus we started leaves its socket and pid file behind when killed.
    if [ "$name" = dbus ]; then
      rm -f /run/dbus/system_bus_socket /run/dbus/pid
    fi
    rm -f "$file"
  done
  rm -f "$sudoers" "$polkit_rule"
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
