#!/usr/bin/env bash
# The local stack: ministack (the AWS emulator) on 127.0.0.1:$LOCAL_STACK_PORT and the local
# services (local-services: stand-ins for what no emulator provides) on the ports after it.
# Ports, region and folders come from infra/local/stack.env.
#
#   infra/local/stack.sh up        start ministack in the background (idempotent), wait until healthy;
#                                  refuses if one of the stack's ports is taken by another process
#   infra/local/stack.sh services  (re)start the local services with what they need from the
#                                  deployed stack's outputs (run after `sam deploy`; `make stack` does)
#   infra/local/stack.sh down      stop the local services and ministack with its Lambda processes
#                                  (graceful SIGTERM first, so state is saved); returns once every
#                                  process it started is gone and every port of the stack is free
#   infra/local/stack.sh status    running/healthy or not (exit 0 only if ministack is healthy)
#   infra/local/stack.sh ports     the port map: one `NAME PORT` line per listener
#   infra/local/stack.sh port NAME one port of the map (stack, camera_api, mediaconvert, origin, gif_sources)
#   infra/local/stack.sh env       print the exports a client shell needs (eval "$(stack.sh env)")
#   infra/local/stack.sh run CMD...  run a client command against the stack, e.g.
#       infra/local/stack.sh run sam deploy --template-file infra/template.yaml --stack-name NAME \
#           --resolve-s3 --capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset
#     (endpoint + dummy credentials + region, .venv/bin first on PATH, SAM_CLI_TELEMETRY=0, the
#     stack's state folder and outputs file, and HOME=.local/home so SAM CLI writes
#     .local/home/.aws-sam instead of ~/.aws-sam; RUSTUP_HOME and CARGO_HOME keep pointing at the
#     real toolchain, which a bare HOME override would break)
#
# Environment: LOCAL_STACK_PORT (default STACK_PORT), LOCAL_STATE_DIR (default STACK_STATE_DIR;
# relative to the repository root), MINISTACK_BIN, LOCAL_SERVICES_BIN (default
# $CARGO_TARGET_DIR/debug/local-services), LOCAL_STACK_START_TIMEOUT, LOCAL_STACK_STOP_TIMEOUT,
# LOCAL_STACK_LOG_LEVEL, LOCAL_SERVICES_LOG.
#
# A stack's state lives in its state folder (git-ignored):
#   ministack.pid ministack.log services.pid services.log state/ s3/ tmp/ stack-outputs.json sam-deploy.log
# Lambda functions run as child processes of ministack, in its process group, and inherit its
# environment: AWS_ENDPOINT_URL (points back at ministack), dummy credentials, region, PATH, TMPDIR.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"
# shellcheck source=stack.env
source "$SCRIPT_DIR/stack.env"

# A path from the environment or stack.env: absolute as given, else under the repository root;
# without symbolic links, as /proc/PID/cwd shows it.
in_repo() { if [[ $1 == /* ]]; then realpath -m -- "$1"; else realpath -m -- "$REPO_ROOT/$1"; fi; }

TOOLS_DIR="$(in_repo "$LOCAL_DIR")"
STATE_DIR="$(in_repo "${LOCAL_STATE_DIR:-$STACK_STATE_DIR}")"
PID_FILE="$STATE_DIR/ministack.pid"
LOG_FILE="$STATE_DIR/ministack.log"
OUTPUTS_FILE="$STATE_DIR/stack-outputs.json"
SERVICES_PID_FILE="$STATE_DIR/services.pid"
SERVICES_LOG_FILE="$STATE_DIR/services.log"

PORT="${LOCAL_STACK_PORT:-$STACK_PORT}"
HOST="127.0.0.1"
ENDPOINT="http://$HOST:$PORT"
REGION="${AWS_REGION:-$STACK_REGION}"
# The port map: the only place that adds the offsets of stack.env to the stack's port.
CAMERA_API_PORT=$((PORT + CAMERA_API_PORT_OFFSET))
MEDIACONVERT_PORT=$((PORT + MEDIACONVERT_PORT_OFFSET))
ORIGIN_PORT=$((PORT + ORIGIN_PORT_OFFSET))
GIF_SOURCES_PORT=$((PORT + GIF_SOURCES_PORT_OFFSET))
ALL_PORT_NAMES=(stack camera_api mediaconvert origin gif_sources)
ALL_PORTS=("$PORT" "$CAMERA_API_PORT" "$MEDIACONVERT_PORT" "$ORIGIN_PORT" "$GIF_SOURCES_PORT")
SERVICE_PORT_INDICES=(1 2 3 4)   # the local services' ports in ALL_PORTS

MINISTACK_BIN="${MINISTACK_BIN:-$REPO_ROOT/.venv-ministack/bin/ministack}"
SERVICES_BIN="${LOCAL_SERVICES_BIN:-$(in_repo "${CARGO_TARGET_DIR:-target}")/debug/local-services}"
START_TIMEOUT="${LOCAL_STACK_START_TIMEOUT:-60}"   # seconds to wait for health
STOP_TIMEOUT="${LOCAL_STACK_STOP_TIMEOUT:-20}"     # seconds to wait for ministack's graceful stop
SERVICES_START_TIMEOUT=10                          # seconds for the local services to listen
GROUP_STOP_TIMEOUT=5                               # seconds for a process group after SIGTERM, then after SIGKILL

# What every client of the stack gets: `env`, `run`, ministack (whose Lambda functions inherit
# it) and the local services. The SDK sends MediaConvert calls to the local MediaConvert.
AWS_CLIENT_ENV=(
  AWS_ENDPOINT_URL="$ENDPOINT"
  AWS_ACCESS_KEY_ID=test
  AWS_SECRET_ACCESS_KEY=test
  AWS_REGION="$REGION"
  AWS_DEFAULT_REGION="$REGION"
  AWS_ENDPOINT_URL_MEDIACONVERT="http://$HOST:$MEDIACONVERT_PORT"
)
# What `env` and `run` add for the tools and tests: this stack's port, state and outputs, so
# that a command run inside (e.g. `make redrive LOCAL=1` from a test) reaches the same stack.
STACK_CLIENT_ENV=(
  "${AWS_CLIENT_ENV[@]}"
  LOCAL_STACK_PORT="$PORT"
  LOCAL_STATE_DIR="$STATE_DIR"
  STACK_OUTPUTS="$OUTPUTS_FILE"
  ORIGIN_URL="http://$HOST:$ORIGIN_PORT"
)

log() { printf 'stack: %s\n' "$*" >&2; }

# The background processes must not inherit the caller's descriptors: under
# `flock /tmp/build.lock make stack` the lock's descriptor would stay open in ministack and in
# local-services, holding everyone's build lock for as long as the stack runs.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

prepare_state_dir() {
  mkdir -p "$STATE_DIR/state" "$STATE_DIR/s3" "$STATE_DIR/tmp"
  [[ -f "$STATE_DIR/.gitignore" ]] || printf '*\n' >"$STATE_DIR/.gitignore"
}

healthy() {
  curl -fsS --max-time 2 "$ENDPOINT/_ministack/health" >/dev/null 2>&1
}

# ------------------------------------------------------------------ processes and ports

# The live (not zombie) processes of a process group. Orphaned Lambda processes may wait a
# moment for their reaper; a zombie holds no port, so it counts as gone.
group_members() {
  local stat line fields
  for stat in /proc/[0-9]*/stat; do
    { read -r line <"$stat"; } 2>/dev/null || continue
    read -r -a fields <<<"${line##*) }"   # after the command name: state ppid pgrp ...
    if [[ ${fields[2]:-} == "$1" && ${fields[0]:-} != Z ]]; then
      line=${stat#/proc/}
      printf '%s\n' "${line%/stat}"
    fi
  done
}

alive() {
  local line
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  line=${line##*) }
  [[ ${line:0:1} != Z ]]
}

# The pid in a pid file, if that process is alive and its command line names $2 (guards against
# a recycled pid).
pid_from() {
  [[ -f "$1" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
  printf '%s\n' "$pid"
}
running_pid() { pid_from "$PID_FILE" ministack; }
services_pid() { pid_from "$SERVICES_PID_FILE" local-services; }

# Waits until no process of the group is left, or the timeout (seconds) passes.
wait_group_gone() {
  local deadline=$((SECONDS + $2))
  while [[ -n "$(group_members "$1")" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# Stops a process group led by $1: SIGTERM to the leader (its graceful shutdown; $3 seconds),
# then SIGTERM to whatever is left of the group, then SIGKILL. Returns once the group is gone.
stop_group() {
  local leader=$1 label=$2 grace=$3 deadline
  kill -TERM "$leader" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while alive "$leader" && ((SECONDS < deadline)); do sleep 0.1; done
  [[ -z "$(group_members "$leader")" ]] && return 0
  kill -TERM -- "-$leader" 2>/dev/null || true
  wait_group_gone "$leader" "$GROUP_STOP_TIMEOUT" && return 0
  log "$label: processes $(group_members "$leader" | tr '\n' ' ')still alive after SIGTERM; sending SIGKILL"
  kill -KILL -- "-$leader" 2>/dev/null || true
  wait_group_gone "$leader" "$GROUP_STOP_TIMEOUT" && return 0
  log "$label: processes $(group_members "$leader" | tr '\n' ' ')survive SIGKILL"
  return 1
}

listening() {
  if command -v ss >/dev/null; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    (: <>"/dev/tcp/$HOST/$1") 2>/dev/null
  fi
}

# Who listens on a port, as far as `ss` may tell (process names need the same user or root).
listener_of() {
  local who
  who="$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(.*)' | head -n 1)" || true
  printf '%s\n' "${who:-a process that ss does not name}"
}

# Refuses (exit 1) when one of the given ports of the map (indices into ALL_PORTS) is taken.
refuse_taken_ports() {
  local taken=0 i
  for i in "$@"; do
    if listening "${ALL_PORTS[$i]}"; then
      log "port ${ALL_PORTS[$i]} (${ALL_PORT_NAMES[$i]}) is taken by $(listener_of "${ALL_PORTS[$i]}"); stop that, or run this stack on other ports with LOCAL_STACK_PORT=..."
      taken=1
    fi
  done
  return "$taken"
}

# Waits until none of the given ports of the map (indices into ALL_PORTS; $1 the timeout in
# seconds) is listening; names those still taken after the timeout.
wait_ports_free() {
  local deadline=$((SECONDS + $1)) i busy
  shift
  while :; do
    busy=()
    for i in "$@"; do
      listening "${ALL_PORTS[$i]}" && busy+=("$i")
    done
    ((${#busy[@]} == 0)) && return 0
    ((SECONDS < deadline)) || break
    sleep 0.1
  done
  for i in "${busy[@]}"; do
    log "port ${ALL_PORTS[$i]} (${ALL_PORT_NAMES[$i]}) is still taken by $(listener_of "${ALL_PORTS[$i]}")"
  done
  return 1
}

# ------------------------------------------------------------------ subcommands

print_env() {
  local assignment
  for assignment in "${STACK_CLIENT_ENV[@]}"; do
    printf 'export %s=%q\n' "${assignment%%=*}" "${assignment#*=}"
  done
}

print_ports() {
  local i
  for i in "${!ALL_PORTS[@]}"; do printf '%s %s\n' "${ALL_PORT_NAMES[$i]}" "${ALL_PORTS[$i]}"; done
}

print_port() {
  local i
  for i in "${!ALL_PORTS[@]}"; do
    if [[ ${ALL_PORT_NAMES[$i]} == "${1:-}" ]]; then
      printf '%s\n' "${ALL_PORTS[$i]}"
      return 0
    fi
  done
  log "usage: $0 port {${ALL_PORT_NAMES[*]}}"
  return 2
}

cmd_run() {
  (($# > 0)) || { log "usage: $0 run CMD [ARGS...]"; return 2; }
  mkdir -p "$TOOLS_DIR/home" "$STATE_DIR"
  [[ -f "$TOOLS_DIR/.gitignore" ]] || printf '*\n' >"$TOOLS_DIR/.gitignore"
  local real_home="${HOME:-/root}"
  exec env \
    RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}" \
    CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}" \
    HOME="$TOOLS_DIR/home" \
    PATH="$REPO_ROOT/.venv/bin:${CARGO_HOME:-$real_home/.cargo}/bin:$PATH" \
    SAM_CLI_TELEMETRY=0 \
    "${STACK_CLIENT_ENV[@]}" \
    "$@"
}

cmd_up() {
  local pid
  if pid="$(running_pid)"; then
    if healthy; then
      log "already running and healthy (pid $pid) at $ENDPOINT"
      return 0
    fi
    log "pid $pid is running but not healthy yet; waiting"
  else
    # A ministack that crashed may have left Lambda processes holding its ports.
    local leftovers=0
    stop_recorded "$PID_FILE" ministack ministack 0 || leftovers=$?
    ((leftovers != 1)) || return 1
    # Every port of the stack must be free, but for the local services of this very stack
    # (`services` restarts them after the deploy).
    if services_pid >/dev/null; then
      refuse_taken_ports 0 || return 1
    else
      refuse_taken_ports 0 "${SERVICE_PORT_INDICES[@]}" || return 1
    fi
    [[ -x "$MINISTACK_BIN" ]] || { log "ministack not found at $MINISTACK_BIN (create .venv-ministack first: make tools)"; return 1; }
    command -v setsid >/dev/null || { log "setsid (util-linux) is required"; return 1; }
    prepare_state_dir
    rm -f "$PID_FILE"
    # setsid: ministack leads its own process group (pgid == pid), so `down` can stop it
    # together with the Lambda processes it spawns. Run from the state folder so nothing it
    # writes relative to its cwd lands in the repo.
    (
      cd "$STATE_DIR"
      close_inherited_fds
      exec env \
        GATEWAY_PORT="$PORT" \
        BIND_HOST="$HOST" \
        MINISTACK_REGION="$REGION" \
        "${AWS_CLIENT_ENV[@]}" \
        PERSIST_STATE=1 \
        STATE_DIR="$STATE_DIR/state" \
        S3_PERSIST=1 \
        S3_DATA_DIR="$STATE_DIR/s3" \
        TMPDIR="$STATE_DIR/tmp" \
        LOG_LEVEL="${LOCAL_STACK_LOG_LEVEL:-INFO}" \
        setsid "$MINISTACK_BIN" </dev/null >>"$LOG_FILE" 2>&1
    ) &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    log "started ministack (pid $pid), log $LOG_FILE"
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ! alive "$pid"; then
      log "ministack exited during start-up; last log lines:"
      tail -n 20 "$LOG_FILE" >&2 || true
      stop_group "$pid" ministack 0 || true
      rm -f "$PID_FILE"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "not healthy after ${START_TIMEOUT}s; stopping it (see $LOG_FILE)"
      cmd_down || true
      return 1
    fi
    sleep 0.3
  done
  log "healthy at $ENDPOINT (state in $STATE_DIR)"
}

# What the local services learn from the deployed stack, as NAME=value lines.
services_settings() {
  python3 - "$OUTPUTS_FILE" <<'PY'
import json, sys

path = sys.argv[1]
outputs = {o["OutputKey"]: o["OutputValue"] for o in json.load(open(path))}
wanted = {
    "RECORDINGS_BUCKET": "RecordingsBucketName",
    "OUTPUT_BUCKET": "OutputBucketName",
    "RESULTS_TOPIC_ARN": "ResultsTopicArn",
    "MEDIACONVERT_EVENT_SOURCE": "MediaConvertEventSource",
}
missing = [key for key in wanted.values() if key not in outputs]
if missing:
    sys.exit(f"stack: {path} lacks {', '.join(missing)}; redeploy (make stack)")
for name, key in wanted.items():
    print(f"{name}={outputs[key]}")
PY
}

# (Re)starts the local services with the deployed stack's outputs: after every deploy, since a
# deploy may change them.
cmd_services() {
  running_pid >/dev/null || { log "ministack is not running for $STATE_DIR; start it first: $0 up"; return 1; }
  [[ -x "$SERVICES_BIN" ]] || { log "local services not built ($SERVICES_BIN): cargo build -p local-services (make stack-up does)"; return 1; }
  [[ -f "$OUTPUTS_FILE" ]] || { log "no stack outputs at $OUTPUTS_FILE: deploy first (make stack)"; return 1; }
  local settings
  settings="$(services_settings)" || return 1
  local service_env
  mapfile -t service_env <<<"$settings"

  services_down || return 1
  refuse_taken_ports "${SERVICE_PORT_INDICES[@]}" || return 1
  (
    cd "$STATE_DIR"
    close_inherited_fds
    exec env "${AWS_CLIENT_ENV[@]}" LOCAL_STACK_PORT="$PORT" "${service_env[@]}" \
      RUST_LOG="${LOCAL_SERVICES_LOG:-info}" \
      setsid "$SERVICES_BIN" </dev/null >>"$SERVICES_LOG_FILE" 2>&1
  ) &
  local pid=$!
  printf '%s\n' "$pid" >"$SERVICES_PID_FILE"

  local deadline=$((SECONDS + SERVICES_START_TIMEOUT)) i port
  for i in "${SERVICE_PORT_INDICES[@]}"; do
    port=${ALL_PORTS[$i]}
    until listening "$port"; do
      if ! alive "$pid" || ((SECONDS >= deadline)); then
        log "local services did not start (port $port not listening); last log lines:"
        tail -n 20 "$SERVICES_LOG_FILE" >&2 || true
        services_down || true
        return 1
      fi
      sleep 0.1
    done
  done
  log "local services up on ports ${ALL_PORTS[*]:1} (pid $pid, log $SERVICES_LOG_FILE)"
}

# Whether the process group has members and all of them work in this stack's state folder (as
# ministack, its Lambda processes and the local services do): then they are what a crashed leader
# left, not the group of an unrelated process that got the recorded pid later.
left_in_state_dir() {
  local members member cwd
  members="$(group_members "$1")"
  [[ -n "$members" ]] || return 1
  for member in $members; do
    cwd="$(readlink "/proc/$member/cwd" 2>/dev/null)" || return 1
    [[ $cwd == "$STATE_DIR" || $cwd == "$STATE_DIR"/* ]] || return 1
  done
}

# Stops what a pid file records: the live process (its command line naming $2) with its process
# group, or, when that process has died (a crash), what it left in its group; $4 seconds for a
# graceful stop. Returns 0 when it stopped something, 1 when something survived, 2 when nothing
# was running.
stop_recorded() {
  local pid_file=$1 program=$2 label=$3 grace=$4 pid=""
  [[ -f "$pid_file" ]] && pid="$(tr -dc '0-9' <"$pid_file")"
  if [[ -z "$pid" ]]; then
    rm -f "$pid_file"
    return 2
  fi
  if pid_from "$pid_file" "$program" >/dev/null; then
    stop_group "$pid" "$label" "$grace" || return 1
  elif ! alive "$pid" && left_in_state_dir "$pid"; then
    log "$label (pid $pid) has exited but left processes in its group; stopping them"
    stop_group "$pid" "$label" 0 || return 1
  else
    rm -f "$pid_file"
    return 2
  fi
  rm -f "$pid_file"
  log "$label stopped (pid $pid)"
}

services_down() {
  local status=0
  stop_recorded "$SERVICES_PID_FILE" local-services "local services" "$GROUP_STOP_TIMEOUT" || status=$?
  ((status != 1))
}

cmd_down() {
  local services ministack failed=0
  # The services first (they call ministack); then ministack: the server itself first (its
  # graceful shutdown saves PERSIST_STATE), then whatever is left of its process group (Lambda
  # bootstraps, helpers).
  stop_recorded "$SERVICES_PID_FILE" local-services "local services" "$GROUP_STOP_TIMEOUT" && services=0 || services=$?
  stop_recorded "$PID_FILE" ministack ministack "$STOP_TIMEOUT" && ministack=0 || ministack=$?
  if ((services == 2 && ministack == 2)); then
    log "not running ($STATE_DIR)"
    return 0
  fi
  ((services != 1 && ministack != 1)) || failed=1
  # The ports of what was stopped: free once its processes are gone, unless one escaped its group.
  local stopped_ports=()
  ((ministack == 2)) || stopped_ports+=(0)
  ((services == 2)) || stopped_ports+=("${SERVICE_PORT_INDICES[@]}")
  wait_ports_free "$GROUP_STOP_TIMEOUT" "${stopped_ports[@]}" || failed=1
  return "$failed"
}

cmd_status() {
  local pid services=""
  if pid="$(services_pid)"; then services="; local services running (pid $pid)"; fi
  if pid="$(running_pid)"; then
    if healthy; then
      echo "running (pid $pid), healthy at $ENDPOINT$services"
      return 0
    fi
    echo "running (pid $pid) but not healthy at $ENDPOINT$services"
    return 1
  fi
  if healthy; then
    echo "not started by this script, but something healthy answers at $ENDPOINT"
    return 1
  fi
  echo "not running$services"
  return 3
}

case "${1:-}" in
  up) cmd_up ;;
  services) cmd_services ;;
  down) cmd_down ;;
  status) cmd_status ;;
  ports) print_ports ;;
  port) print_port "${2:-}" ;;
  env) print_env ;;
  run) shift; cmd_run "$@" ;;
  *)
    echo "usage: $0 {up|services|down|status|ports|port NAME|env|run CMD...}" >&2
    exit 2
    ;;
esac
