# shellcheck shell=bash
# Sourced by tests/deploy/run and tests/deploy/image, after scripts/lib.sh.

# unpack_debs DIR PACKAGE...: Debian's packages downloaded (`apt-get download`, which checks them
# against the signed package index) and unpacked with `dpkg -x` into DIR. Not installed: no
# maintainer scripts, no services, nothing outside DIR. A fresh machine may have no package lists
# yet: then they are fetched first.
unpack_debs() {
  local dir=$1 tmp deb opts=()
  shift
  command -v apt-get >/dev/null || die "unpack_debs: needs apt-get (Debian's packages: $*)"
  if ! apt-cache show "$@" >/dev/null 2>&1; then
    log "apt-get update (no package lists for $*)"
    apt-get update -qq
  fi
  # As root, apt hands the download to the _apt user, who cannot write into a private
  # temporary folder: download as root instead.
  if [ "$(id -u)" = 0 ]; then opts=(-o APT::Sandbox::User=root); fi
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq "${opts[@]}" "$@"); then
    rm -rf "$tmp"
    die "unpack_debs: apt-get download $* failed"
  fi
  mkdir -p "$dir"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dir"; done
  rm -rf "$tmp"
}
