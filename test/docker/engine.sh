#!/usr/bin/env bash
# A private Docker engine for natsmesh's Docker tests, and the local base images they build on.
#
#   engine.sh start    start dockerd (if it is not running) and print its environment
#   engine.sh images   build the local base images (if missing) and print the environment
#   engine.sh env      print the environment of a running engine (NATSMESH_DOCKER_HOST, ...)
#   engine.sh stop     stop the dockerd this script started, by its pid
#   engine.sh clean    stop, then remove the engine's data (images, build cache)
#
# The engine never touches /var/run/docker.sock: it has its own socket, data and exec roots under
# NATSMESH_DOCKER_STATE, no iptables and no bridge, so every container runs with host networking
# and only loopback addresses are ever used. Its storage driver is overlay2 where this machine can
# mount an overlay file system, else vfs (slow: every layer is a full copy); set
# NATSMESH_DOCKER_STORAGE_DRIVER to choose.
# There is no image registry here: the base images are made from a Debian root file system
# (debootstrap) and this machine's own Node.js. The root file system is cached as a tarball under
# NATSMESH_DOCKER_CACHE, keyed by date; without the cache it is simply built again.
# Diagnostics go to stderr; stdout carries only `NAME=value` lines, for `eval` or a dotenv file.
set -euo pipefail

STATE=${NATSMESH_DOCKER_STATE:-/var/tmp/natsmesh-docker}
CACHE=${NATSMESH_DOCKER_CACHE:-/var/cache/natsmesh-docker}
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/docker.pid"
LOG="$STATE/dockerd.log"
NATS_IMAGE=${NATSMESH_DOCKER_NATS_IMAGE:-natsmesh-local/nats:bookworm}
NODE_IMAGE=${NATSMESH_DOCKER_NODE_IMAGE:-natsmesh-local/node:20}
SUITE=bookworm
PACKAGES=nats-server,ca-certificates,wget
START_TIMEOUT_S=60
STOP_TIMEOUT_S=30

export DOCKER_HOST="unix://$SOCK"

# overlay2 when an overlay mount works here, else vfs.
storage_driver() {
  if [ -n "${NATSMESH_DOCKER_STORAGE_DRIVER:-}" ]; then
    echo "$NATSMESH_DOCKER_STORAGE_DRIVER"
    return
  fi
  local probe driver=vfs
  probe=$(mktemp -d "$STATE/overlay-probe.XXXXXX")
  mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay \
    -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
    umount "$probe/merged" && driver=overlay2
  fi
  rm -rf "$probe"
  echo "$driver"
}

say() { echo "engine.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Installs the Debian packages that provide the missing commands (as root only).
need() {
  local missing=() cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
  say "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
}

running_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

print_env() {
  echo "NATSMESH_DOCKER_HOST=unix://$SOCK"
  echo "DOCKER_HOST=unix://$SOCK"
  echo "NATSMESH_DOCKER_NATS_IMAGE=$NATS_IMAGE"
  echo "NATSMESH_DOCKER_NODE_IMAGE=$NODE_IMAGE"
  # For @natsmesh/testing's container runtime: the local image, on the host network.
  echo "NATSMESH_TEST_NATS_IMAGE=$NATS_IMAGE"
  echo "NATSMESH_TEST_DOCKER_NETWORK=host"
  # Testcontainers' reaper is an image from a registry, and there is none here; the tests
  # remove their own containers, and `engine.sh stop` ends whatever is left.
  echo "TESTCONTAINERS_RYUK_DISABLED=true"
  # Inside a container, Testcontainers looks for the bridge network's gateway; there is no bridge.
  echo "TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1"
}

start() {
  need dockerd:docker.io docker:docker.io docker-compose:docker-compose
  mkdir -p "$STATE"
  if running_pid >/dev/null && answers; then
    say "dockerd already running (pid $(running_pid)) on $SOCK"
    return 0
  fi
  if pid=$(running_pid); then
    die "dockerd pid $pid from $PIDFILE runs but does not answer on $SOCK; run '$0 stop' first"
  fi
  rm -f "$PIDFILE" "$SOCK"
  local driver
  driver=$(storage_driver)
  say "starting dockerd ($driver) on $SOCK (log: $LOG)"
  # setsid: the engine outlives this script and is not hit by the caller's Ctrl-C.
  setsid dockerd \
    --storage-driver="$driver" --iptables=false --ip6tables=false --bridge=none \
    --data-root "$STATE/data" --exec-root "$STATE/exec" \
    -H "unix://$SOCK" --pidfile "$PIDFILE" >>"$LOG" 2>&1 </dev/null 9>&- &
  local launched=$! deadline=$((SECONDS + START_TIMEOUT_S))
  until answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd exited during startup (log above)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$LOG" >&2 || true
      kill -TERM "$launched" 2>/dev/null || true
      die "dockerd did not answer on $SOCK within ${START_TIMEOUT_S}s (log above)"
    fi
    sleep 0.5
  done
  say "dockerd $(docker version --format '{{.Server.Version}}') running, pid $launched"
}

stop() {
  local pid deadline
  if ! pid=$(running_pid); then
    say "no dockerd running from $PIDFILE"
    rm -f "$PIDFILE"
    return 0
  fi
  say "stopping dockerd pid $pid"
  kill -TERM "$pid"
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "dockerd pid $pid still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$PIDFILE" "$SOCK"
}

# The first Debian mirror apt uses (deb822 sources first, then sources.list).
mirror() {
  local uri
  uri=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /debian/ && $2 !~ /security/ { print $2; exit }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# A tarball of a minimal Debian with nats-server, from the cache when it has today's.
rootfs_tarball() {
  local tarball="$CACHE/$SUITE-${PACKAGES//,/-}-$(date +%Y%m%d).tar" dir
  mkdir -p "$CACHE"
  if [ -s "$tarball" ]; then
    say "using cached root file system $tarball"
  else
    need debootstrap:debootstrap
    dir=$(mktemp -d "$STATE/rootfs.XXXXXX")
    say "debootstrap $SUITE with $PACKAGES from $(mirror) (takes a few minutes)"
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$(mirror)" >"$STATE/debootstrap.log" 2>&1; then
      tail -n 20 "$STATE/debootstrap.log" >&2 || true
      rm -rf "$dir"
      die "debootstrap failed (log above)"
    fi
    rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    tar -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
    # Older days' tarballs are stale: keep only this one.
    find "$CACHE" -maxdepth 1 -name "$SUITE-*.tar" ! -path "$tarball" -delete
  fi
  echo "$tarball"
}

images() {
  answers || die "no engine answers on $SOCK; run '$0 start' first"
  if ! docker image inspect "$NATS_IMAGE" >/dev/null 2>&1; then
    local tarball
    tarball=$(rootfs_tarball)
    say "importing $NATS_IMAGE"
    # Like the official nats image: arguments go straight to nats-server.
    docker import --change 'ENTRYPOINT ["nats-server"]' --change 'CMD ["-js"]' \
      "$tarball" "$NATS_IMAGE" >/dev/null
  fi
  if ! docker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
    need node:nodejs npm:nodejs
    local ctx node npm
    node=$(readlink -f "$(command -v node)")
    npm="$(npm root -g)/npm"
    [ -f "$npm/bin/npm-cli.js" ] || die "npm not found at $npm"
    ctx=$(mktemp -d "$STATE/node-image.XXXXXX")
    cp "$node" "$ctx/node"
    cp -a "$npm" "$ctx/npm"
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $NATS_IMAGE
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && useradd --uid 1000 --user-group --create-home --shell /bin/sh node
ENTRYPOINT []
CMD ["node"]
DOCKERFILE
    say "building $NODE_IMAGE with Node.js $(node --version) and npm $(npm --version)"
    if ! docker build -q -t "$NODE_IMAGE" "$ctx" >/dev/null 2>"$STATE/node-image.log"; then
      cat "$STATE/node-image.log" >&2
      rm -rf "$ctx"
      die "building $NODE_IMAGE failed (log above)"
    fi
    rm -rf "$ctx"
  fi
}

main() {
  local cmd=${1:-}
  case "$cmd" in
    start) (flock -w 300 9 || die "another engine.sh holds $STATE/lock"; start) 9>"$(mkdir -p "$STATE" && echo "$STATE/lock")"; print_env ;;
    images) (flock -w 600 9 || die "another engine.sh holds $STATE/lock"; images) 9>"$STATE/lock"; print_env ;;
    env) answers || die "no engine answers on $SOCK; run '$0 start' first"; print_env ;;
    stop) stop ;;
    clean) stop; say "removing $STATE"; rm -rf "$STATE" ;;
    *) echo "usage: $0 start|images|env|stop|clean" >&2; exit 2 ;;
  esac
}

main "$@"
