# Sourced by scripts/test and scripts/localnet: installs OpenBLAS (libopenblas0-pthread) when this
# machine lacks it; the experts' matrix products need it.
ensure_openblas() {
  # grep reads to the end (no -q): with pipefail, ldconfig killed by SIGPIPE would read as "missing".
  ldconfig -p | grep 'libopenblas\.so\.0' > /dev/null && return 0
  echo "OpenBLAS is missing; installing libopenblas0-pthread" >&2
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libopenblas0-pthread >/dev/null
}
