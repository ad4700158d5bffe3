# Sourced by the scripts beside it: runs `moemesh localnet VERB ARGS`, building moemesh first (and
# installing OpenBLAS, and iptables for --wan, when this machine lacks them) for `up` and `demo`, or when
# it was never built.
localnet() {
  local repo bin
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  bin="$repo/src/Node/bin/Release/net10.0/moemesh"
  local build=no
  case " $* " in
    *" --help "* | *" -h "*) ;;
    *) if [ "$1" = up ] || [ "$1" = demo ] || [ "$1" = study ]; then build=yes; fi ;;
  esac
  [ -x "$bin" ] || build=yes
  if [ "$build" = yes ]; then
    . "$repo/scripts/lib/packages.sh"
    ensure_openblas
    case " $* " in *" --wan "*) ensure_iptables ;; esac
    # On stdout: stderr is for what went wrong, in one line.
    echo "building moemesh"
    local log
    log="$(dotnet build "$repo/src/Node" -c Release --nologo -v quiet 2>&1)" || { echo "$log" >&2; echo "the build failed" >&2; exit 1; }
  fi
  # The testnet lives under the repository's runs/ (ignored by git) wherever the script is run from.
  case " $* " in
    *" --run-dir "* | *" --run-dir="* | *" --help "* | *" -h "*) ;;
    *) [ "$1" = demo ] || [ "$1" = study ] || set -- "$@" --run-dir "$repo/runs/localnet" ;;
  esac
  exec "$bin" localnet "$@"
}
