# Sourced by the scripts: start_registry DIR starts a distribution registry
# on a free loopback port and prints HOST:PORT; stop_registries ends the
# ones it started, by PID.
started_registry_pids=()

free_port() {
  local p
  for p in $(seq "${1:-5100}" 5999); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# start_registry DIR PORT: runs docker-registry with storage under DIR.
start_registry() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
CFG
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  started_registry_pids+=($!)
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "registry on port $port did not start:" >&2
  cat "$dir/registry.log" >&2
  return 1
}

stop_registries() {
  local pid
  for pid in "${started_registry_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  started_registry_pids=()
}
