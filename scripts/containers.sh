#!/usr/bin/env bash
# Sets up and tears down real container engines for the tests, as root
# (docs/testing.md says why each flag):
#   scripts/containers.sh start   # prints the environment to export
#   scripts/containers.sh stop
# start: installs docker.io, podman, runc and busybox-static if missing;
# builds a registry-free image from busybox (a tarball, imported into both
# engines; users root and app, uid 1000, for su in the image); starts dockerd on a private socket (no iptables, no bridge, no
# network); starts one container per engine (`--network none`). Prints
#   UMBILICAL_TEST_DOCKER_HOST (and DOCKER_HOST, for every docker client
#   the tests start), UMBILICAL_TEST_DOCKER_CONTAINER,
#   UMBILICAL_TEST_PODMAN_CONTAINER; for the shim's placement (issue 27):
#   UMBILICAL_TEST_DOCKER_READONLY_CONTAINER (read-only root, /dev/shm
#   noexec: no place at all), UMBILICAL_TEST_DOCKER_READONLY_EXEC_CONTAINER
#   (read-only root, a tmpfs /tmp that allows execution, as Kubernetes'
#   readOnlyRootFilesystem with an emptyDir), and
#   UMBILICAL_TEST_{DOCKER,PODMAN}_NOTMP_CONTAINER (an image with no /tmp),
#   UMBILICAL_TEST_DOCKER_BARE_CONTAINER (distroless-like: no shell, only
#   /busybox)
# for each engine that started; one that cannot start prints SKIP with the
# reason on stderr. Everything lives under target/containers/.
set -uo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/containers"
# Names carry this run's id: podman's store is system-wide, and a fixed
# name could be another run's container. `stop` removes the names that
# start recorded in target/containers/names, nothing else.
run=$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')
image=umb-test-$run:latest
notmp_image=umb-test-notmp-$run:latest
bare_image=umb-test-bare-$run:latest
docker_c=umb-test-docker-$run
# A container whose root filesystem is read-only: no writable place for a
# shim copied in.
docker_ro=umb-test-docker-ro-$run
docker_rox=umb-test-docker-rox-$run
docker_notmp=umb-test-docker-notmp-$run
docker_bare=umb-test-docker-bare-$run
podman_c=umb-test-podman-$run
podman_notmp=umb-test-podman-notmp-$run

stop() {
  local names="$dir/names"
  if [ -f "$names" ]; then
    # shellcheck disable=SC1090
    . "$names"
    if [ -S "$dir/docker/sock" ]; then
      DOCKER_HOST="unix://$dir/docker/sock" timeout 30 docker rm -f "$old_docker_c" "$old_docker_ro" "${old_docker_rox:-}" "${old_docker_notmp:-}" "${old_docker_bare:-}" >/dev/null 2>&1
    fi
    if command -v podman >/dev/null; then
      timeout 30 podman rm -f -t 0 "$old_podman_c" "${old_podman_notmp:-}" >/dev/null 2>&1
      timeout 30 podman rmi -f "localhost/$old_image" "localhost/${old_notmp_image:-}" >/dev/null 2>&1
    fi
  fi
  if [ -f "$dir/docker/pid" ]; then
    pid=$(cat "$dir/docker/pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # dockerd unmounts its overlays on a normal stop; anything left is
  # unmounted before the directory goes.
  grep -o " $dir/[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$dir"
}

case "${1:-}" in
start)
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: containers: not root; cannot start container engines" >&2
    exit 0
  fi
  need=()
  for pkg in docker.io podman runc busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  if [ "${#need[@]}" -ne 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { echo "SKIP: containers: cannot install ${need[*]}" >&2; exit 0; }
  fi
  stop >/dev/null 2>&1
  mkdir -p "$dir/root/bin" "$dir/root/tmp" "$dir/docker"
  printf 'old_image=%s old_notmp_image=%s old_docker_c=%s old_docker_ro=%s old_docker_rox=%s old_docker_notmp=%s old_docker_bare=%s old_podman_c=%s old_podman_notmp=%s\n' \
    "$image" "$notmp_image" "$docker_c" "$docker_ro" "$docker_rox" "$docker_notmp" "$docker_bare" "$podman_c" "$podman_notmp" > "$dir/names"
  chmod 1777 "$dir/root/tmp"
  cp "$(command -v busybox)" "$dir/root/bin/"
  for c in sh cat wc sleep id echo true kill env head ls rm ps su; do ln -sf busybox "$dir/root/bin/$c"; done
  # Two users, root and app (uid 1000), for a chain that ends with su in
  # the container (docker exec, then su app).
  mkdir -p "$dir/root/etc"
  printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n' > "$dir/root/etc/passwd"
  printf 'root:x:0:\napp:x:1000:\n' > "$dir/root/etc/group"
  tar -C "$dir/root" -cf "$dir/root.tar" .
  # The same image without /tmp: the shim's copy must find another place.
  tar -C "$dir/root" --exclude=./tmp -cf "$dir/notmp.tar" .
  # A distroless-like image: no shell, no coreutils, no C library; only
  # /busybox (run by its path) and a sticky /tmp.
  mkdir -p "$dir/bare/tmp" && chmod 1777 "$dir/bare/tmp"
  cp "$(command -v busybox)" "$dir/bare/busybox"
  tar -C "$dir/bare" -cf "$dir/bare.tar" .

  # docker, on a private socket and data root.
  d="$dir/docker"
  dockerd --iptables=false --bridge=none --ip-forward=false --data-root "$d/root" --exec-root "$d/exec" \
    -H "unix://$d/sock" --pidfile "$d/pid" >"$d/log" 2>&1 &
  export DOCKER_HOST="unix://$d/sock"
  for _ in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  if ! docker version >/dev/null 2>&1; then
    echo "SKIP: docker: dockerd did not start ($(tail -n 3 "$d/log" | tr '\n' ' '))" >&2
  elif docker import "$dir/root.tar" "$image" >/dev/null \
    && docker run -d --network none --name "$docker_c" "$image" sleep 36000 >/dev/null; then
    echo "export UMBILICAL_TEST_DOCKER_HOST=unix://$d/sock DOCKER_HOST=unix://$d/sock"
    echo "export UMBILICAL_TEST_DOCKER_CONTAINER=$docker_c"
    if docker run -d --read-only --network none --name "$docker_ro" "$image" sleep 36000 >/dev/null; then
      echo "export UMBILICAL_TEST_DOCKER_READONLY_CONTAINER=$docker_ro"
    else
      echo "SKIP: docker: cannot start a read-only container" >&2
    fi
    if docker run -d --read-only --tmpfs /tmp:exec,mode=1777 --network none --name "$docker_rox" "$image" \
      sleep 36000 >/dev/null; then
      echo "export UMBILICAL_TEST_DOCKER_READONLY_EXEC_CONTAINER=$docker_rox"
    else
      echo "SKIP: docker: cannot start a read-only container with a tmpfs /tmp" >&2
    fi
    if docker import "$dir/notmp.tar" "$notmp_image" >/dev/null \
      && docker run -d --network none --name "$docker_notmp" "$notmp_image" sleep 36000 >/dev/null; then
      echo "export UMBILICAL_TEST_DOCKER_NOTMP_CONTAINER=$docker_notmp"
    else
      echo "SKIP: docker: cannot start a container of an image without /tmp" >&2
    fi
    if docker import "$dir/bare.tar" "$bare_image" >/dev/null \
      && docker run -d --network none --name "$docker_bare" "$bare_image" /busybox sleep 36000 >/dev/null; then
      echo "export UMBILICAL_TEST_DOCKER_BARE_CONTAINER=$docker_bare"
    else
      echo "SKIP: docker: cannot start a container of an image with no shell" >&2
    fi
  else
    echo "SKIP: docker: cannot import the image or start a container" >&2
  fi

  # podman, with runc (crun fails here on setrlimit and cgroup hybrid mode).
  if podman import "$dir/root.tar" "localhost/$image" >/dev/null 2>&1 \
    && podman --runtime runc run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 \
      --name "$podman_c" "localhost/$image" sleep 36000 >/dev/null 2>"$dir/podman.log"; then
    echo "export UMBILICAL_TEST_PODMAN_CONTAINER=$podman_c"
    if podman import "$dir/notmp.tar" "localhost/$notmp_image" >/dev/null 2>&1 \
      && podman --runtime runc run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 \
        --name "$podman_notmp" "localhost/$notmp_image" sleep 36000 >/dev/null 2>>"$dir/podman.log"; then
      echo "export UMBILICAL_TEST_PODMAN_NOTMP_CONTAINER=$podman_notmp"
    else
      echo "SKIP: podman: cannot start a container of an image without /tmp" >&2
    fi
  else
    echo "SKIP: podman: cannot start a container ($(tail -n 2 "$dir/podman.log" 2>/dev/null | tr '\n' ' '))" >&2
  fi
  ;;
stop)
  stop
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
