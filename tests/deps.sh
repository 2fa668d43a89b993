#!/usr/bin/env bash
# deps.sh: every documented make target installs what it runs before running
# it. `make -n -B` (into a scratch build directory) lists a target's commands
# in order; the first command needing a package group must come after the
# .ci/deps call that installs that group. Prints "RESULT <run> <failed>".
set -u
B=$(mktemp -d "${TMPDIR:-/tmp}/deps.XXXXXX")
trap 'rm -rf "$B"' EXIT
run=0 failed=0

# first LOG REGEX: line number of the first line matching REGEX (empty if none).
first() { grep -nE -m1 -- "$2" "$1" | cut -d: -f1; }

# needs TARGET TOOLRE DEPSRE DESC: in TARGET's commands, a line matching DEPSRE
# comes before the first matching TOOLRE (which must be there).
needs() {
  local target=$1 tool=$2 deps=$3 desc=$4 log="$B/$1.log"
  [ -f "$log" ] || make -n -B --no-print-directory BUILD="$B/build" "$target" >"$log" 2>&1
  local t d
  t=$(first "$log" "$tool")
  d=$(first "$log" "$deps")
  run=$((run + 1))
  if [ -n "$t" ] && [ -n "$d" ] && [ "$d" -lt "$t" ]; then
    echo "ok   - make $target: $desc installed (line $d) before it is used (line $t)"
  else
    failed=$((failed + 1))
    echo "FAIL - make $target: $desc installed before it is used (deps line '${d:-none}', first use '${t:-none}')"
  fi
}

base='^bash \.ci/deps( |$)'
needs all '^(bison|flex) ' "$base" "flex and bison"
needs all '^cc |^gcc ' "$base" "the libraries (zlib, OpenBLAS)"
needs train '^(bison|flex) ' "$base" "flex and bison"
needs bench '^(bison|flex) ' "$base" "flex and bison"
needs test '^(bison|flex) ' '^bash \.ci/deps test' "flex, bison, CUnit"
needs test 'arm-none-eabi-gcc' '^bash \.ci/deps (test|firmware)' "the Cortex-M toolchain"
needs firmware-test 'arm-none-eabi-gcc' '^bash \.ci/deps firmware' "the Cortex-M toolchain"
needs firmware-test 'qemu-system-arm' '^bash \.ci/deps firmware' "QEMU"
needs firmware-test '^cc |^gcc ' '^bash \.ci/deps' "the host compiler's libraries"
needs plot '^gnuplot ' '^bash \.ci/deps plot' "gnuplot"
needs data 'fetch-mnist' '^bash \.ci/deps data' "curl"
echo "RESULT $run $failed"
[ $failed -eq 0 ]
