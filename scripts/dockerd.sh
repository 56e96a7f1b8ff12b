# Sourced by the scripts: start_dockerd starts a Docker daemon of our own
# (no bridge, no iptables: containers use --network host) unless DOCKER_HOST
# already answers, and exports DOCKER_HOST; stop_dockerd ends only the
# daemon it started, by PID.
started_dockerd_pid=""
started_dockerd_dir=""

start_dockerd() {
  if [ -n "${DOCKER_HOST:-}" ] && docker version >/dev/null 2>&1; then
    return 0
  fi
  started_dockerd_dir=$(mktemp -d /tmp/hoistd.XXXXXX)
  local sock="unix://$started_dockerd_dir/docker.sock"
  dockerd --iptables=false --ip6tables=false --bridge=none \
    --host "$sock" --data-root "$started_dockerd_dir/data" --exec-root "$started_dockerd_dir/x" \
    --pidfile "$started_dockerd_dir/docker.pid" >"$started_dockerd_dir/dockerd.log" 2>&1 &
  started_dockerd_pid=$!
  export DOCKER_HOST="$sock"
  for _ in $(seq 1 120); do
    if docker version >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$started_dockerd_pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "dockerd did not start; its log:" >&2
  tail -n 40 "$started_dockerd_dir/dockerd.log" >&2
  return 1
}

stop_dockerd() {
  if [ -n "$started_dockerd_pid" ]; then
    kill "$started_dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$started_dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$started_dockerd_pid" 2>/dev/null || true
    started_dockerd_pid=""
    rm -rf "$started_dockerd_dir" 2>/dev/null || true
  fi
}
