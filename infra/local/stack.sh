#!/usr/bin/env bash
# Local AWS stack: one ministack process on 127.0.0.1:$LOCAL_STACK_PORT (default 4566).
#
#   infra/local/stack.sh up      start in the background (idempotent), wait until healthy
#   infra/local/stack.sh down    stop it (graceful SIGTERM so state is saved, then its process group)
#   infra/local/stack.sh status  running/healthy or not (exit 0 only if healthy)
#   infra/local/stack.sh env     print the exports a client shell needs (eval "$(stack.sh env)")
#   infra/local/stack.sh run CMD...  run a client command against the stack, e.g.
#       infra/local/stack.sh run sam deploy --template-file infra/template.yaml --stack-name NAME \
#           --resolve-s3 --capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset
#     (endpoint + dummy credentials + region, .venv/bin first on PATH, SAM_CLI_TELEMETRY=0, and
#     HOME=.local/home so SAM CLI writes .local/home/.aws-sam instead of ~/.aws-sam; RUSTUP_HOME and
#     CARGO_HOME keep pointing at the real toolchain, which a bare HOME override would break)
#
# All state lives in <repo>/.local/ (git-ignored by its own .gitignore):
#   .local/ministack.pid  .local/ministack.log  .local/state/  .local/s3/  .local/tmp/
# Lambda functions run as child processes of ministack and inherit its environment:
# AWS_ENDPOINT_URL (points back at ministack), dummy credentials, region, PATH and TMPDIR.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
LOCAL_DIR="$REPO_ROOT/.local"
PID_FILE="$LOCAL_DIR/ministack.pid"
LOG_FILE="$LOCAL_DIR/ministack.log"

PORT="${LOCAL_STACK_PORT:-4566}"
HOST="127.0.0.1"
ENDPOINT="http://$HOST:$PORT"
REGION="${AWS_REGION:-us-east-1}"
MINISTACK_BIN="${MINISTACK_BIN:-$REPO_ROOT/.venv-ministack/bin/ministack}"
START_TIMEOUT="${LOCAL_STACK_START_TIMEOUT:-60}"   # seconds to wait for health
STOP_TIMEOUT="${LOCAL_STACK_STOP_TIMEOUT:-20}"     # seconds to wait for a graceful stop
# The local stand-ins for what no emulator provides (devstack::services), built by `make stack-up`.
SERVICES_BIN="${LOCAL_SERVICES_BIN:-$REPO_ROOT/target/debug/local-services}"
SERVICES_PID_FILE="$LOCAL_DIR/services.pid"
SERVICES_LOG_FILE="$LOCAL_DIR/services.log"
SERVICES_BASE_PORT=$((PORT + 10))
# The local MediaConvert (devstack::services::mediaconvert): the SDK sends MediaConvert calls
# here when this is set; Lambda functions inherit it from ministack's environment.
MEDIACONVERT_ENDPOINT="http://$HOST:$((PORT + 11))"
# The CloudFront stand-in (devstack::services::origin).
ORIGIN_ENDPOINT="http://$HOST:$((PORT + 12))"
# What every client of the stack gets: `env`, `run`, ministack (whose Lambda functions inherit
# it) and the local services.
AWS_CLIENT_ENV=(
  AWS_ENDPOINT_URL="$ENDPOINT"
  AWS_ACCESS_KEY_ID=test
  AWS_SECRET_ACCESS_KEY=test
  AWS_REGION="$REGION"
  AWS_DEFAULT_REGION="$REGION"
  AWS_ENDPOINT_URL_MEDIACONVERT="$MEDIACONVERT_ENDPOINT"
)

# Daemons must not keep the caller's open files: an inherited lock file descriptor (e.g. from
# `flock LOCK make stack`) would stay locked for as long as the stack runs.
close_inherited_fds() {
  local fd
  for fd in /proc/self/fd/*; do
    fd="${fd##*/}"
    ((fd > 2)) && eval "exec ${fd}>&-" 2>/dev/null || true
  done
}

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

healthy() {
  curl -fsS --max-time 2 "$ENDPOINT/_ministack/health" >/dev/null 2>&1
}

# The pid from the pid file, if that process is alive and is our ministack.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be a ministack.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ministack || return 1
  printf '%s\n' "$pid"
}

print_env() {
  local assignment
  for assignment in "${AWS_CLIENT_ENV[@]}" LOCAL_STACK_PORT="$PORT"; do
    printf 'export %s\n' "$assignment"
  done
}

cmd_run() {
  (($# > 0)) || { log "usage: $0 run CMD [ARGS...]"; return 2; }
  mkdir -p "$LOCAL_DIR/home"
  [[ -f "$LOCAL_DIR/.gitignore" ]] || printf '*\n' >"$LOCAL_DIR/.gitignore"
  local real_home="${HOME:-/root}"
  exec env \
    RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}" \
    CARGO_HOME="${CARGO_HOME:-$real_home/.cargo}" \
    HOME="$LOCAL_DIR/home" \
    PATH="$REPO_ROOT/.venv/bin:${CARGO_HOME:-$real_home/.cargo}/bin:$PATH" \
    SAM_CLI_TELEMETRY=0 \
    "${AWS_CLIENT_ENV[@]}" \
    LOCAL_STACK_PORT="$PORT" \
    ORIGIN_URL="$ORIGIN_ENDPOINT" \
    STACK_OUTPUTS="$LOCAL_DIR/stack-outputs.json" \
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
    if healthy; then
      log "something else already answers on $ENDPOINT (not started by this script); refusing"
      return 1
    fi
    [[ -x "$MINISTACK_BIN" ]] || { log "ministack not found at $MINISTACK_BIN (create .venv-ministack first)"; return 1; }
    command -v setsid >/dev/null || { log "setsid (util-linux) is required"; return 1; }
    mkdir -p "$LOCAL_DIR/state" "$LOCAL_DIR/s3" "$LOCAL_DIR/tmp"
    [[ -f "$LOCAL_DIR/.gitignore" ]] || printf '*\n' >"$LOCAL_DIR/.gitignore"
    rm -f "$PID_FILE"
    # setsid: ministack leads its own process group (pgid == pid), so `down` can
    # stop it together with the Lambda processes it spawns. Run from the state dir
    # so nothing it writes relative to its cwd lands in the repo.
    (
      cd "$LOCAL_DIR"
      close_inherited_fds
      exec env \
        GATEWAY_PORT="$PORT" \
        BIND_HOST="$HOST" \
        MINISTACK_REGION="$REGION" \
        "${AWS_CLIENT_ENV[@]}" \
        PERSIST_STATE=1 \
        STATE_DIR="$LOCAL_DIR/state" \
        S3_PERSIST=1 \
        S3_DATA_DIR="$LOCAL_DIR/s3" \
        TMPDIR="$LOCAL_DIR/tmp" \
        LOG_LEVEL="${LOCAL_STACK_LOG_LEVEL:-INFO}" \
        setsid "$MINISTACK_BIN" </dev/null >>"$LOG_FILE" 2>&1
    ) &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    log "started ministack (pid $pid), log $LOG_FILE"
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "ministack exited during start-up; last log lines:"
      tail -n 20 "$LOG_FILE" >&2 || true
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
  log "healthy at $ENDPOINT"
  services_up
}

services_pid() {
  [[ -f "$SERVICES_PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$SERVICES_PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q local-services || return 1
  printf '%s\n' "$pid"
}

# Starts the local services (if built) next to ministack, with the same client environment.
services_up() {
  if services_pid >/dev/null; then return 0; fi
  if [[ ! -x "$SERVICES_BIN" ]]; then
    log "local services not built ($SERVICES_BIN); run \`make stack-up\`"
    return 0
  fi
  (
    cd "$LOCAL_DIR"
    close_inherited_fds
    exec env LOCAL_STACK_PORT="$PORT" "${AWS_CLIENT_ENV[@]}" \
      STACK_OUTPUTS="$LOCAL_DIR/stack-outputs.json" RUST_LOG="${LOCAL_SERVICES_LOG:-info}" \
      setsid "$SERVICES_BIN" </dev/null >>"$SERVICES_LOG_FILE" 2>&1
  ) &
  printf '%s\n' "$!" >"$SERVICES_PID_FILE"
  local deadline=$((SECONDS + 10))
  until curl -s --max-time 1 -o /dev/null "http://$HOST:$SERVICES_BASE_PORT/"; do
    if ! services_pid >/dev/null || ((SECONDS >= deadline)); then
      log "local services did not start; last log lines:"
      tail -n 20 "$SERVICES_LOG_FILE" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  log "local services up from port $SERVICES_BASE_PORT (log $SERVICES_LOG_FILE)"
}

services_down() {
  local pid
  pid="$(services_pid)" || { rm -f "$SERVICES_PID_FILE"; return 0; }
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 5))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$SERVICES_PID_FILE"
}

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

cmd_down() {
  services_down
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  # SIGTERM the server itself first: its graceful shutdown saves PERSIST_STATE.
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  # Then whatever is left of its process group (Lambda bootstraps, helpers).
  if group_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if group_alive "$pid"; then
      log "process group $pid still alive; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if healthy; then
      echo "running (pid $pid), healthy at $ENDPOINT"
      return 0
    fi
    echo "running (pid $pid) but not healthy at $ENDPOINT"
    return 1
  fi
  if healthy; then
    echo "not started by this script, but something healthy answers at $ENDPOINT"
    return 1
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) print_env ;;
  run) shift; cmd_run "$@" ;;
  *)
    echo "usage: $0 {up|down|status|env|run CMD...}" >&2
    exit 2
    ;;
esac
