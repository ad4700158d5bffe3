# Sourced by scripts/test, scripts/bench and scripts/localnet: installs, through apt-get, what this
# machine lacks and MoEMesh needs.

# ensure_package PACKAGE WHAT CHECK...: installs PACKAGE when the command CHECK fails.
ensure_package() {
  local package="$1" what="$2"
  shift 2
  "$@" && return 0
  echo "$what is missing; installing $package" >&2
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$package" >/dev/null
}

# OpenBLAS: the experts' matrix products need it.
ensure_openblas() {
  # grep reads to the end (no -q): with pipefail, ldconfig killed by SIGPIPE would read as "missing".
  ensure_package libopenblas0-pthread OpenBLAS sh -c "ldconfig -p | grep 'libopenblas\.so\.0' > /dev/null"
}

# iptables: a --wan testnet sends each node's packets through its link with an iptables rule. Only root
# can make network namespaces, so others are not asked for it.
ensure_iptables() {
  [ "$(id -u)" -eq 0 ] || return 0
  ensure_package iptables iptables sh -c "command -v iptables > /dev/null"
}

# Chromium: the status page test loads the page in Debian's chromium, headless.
ensure_chromium() {
  ensure_package chromium Chromium sh -c "test -x /usr/bin/chromium"
}
