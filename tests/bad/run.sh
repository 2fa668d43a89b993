#!/usr/bin/env bash
# run.sh: the bad-input corpus. For each cnnc binary given (e.g. build/cnnc
# build/san/cnnc) and each tests/bad/NAME.cnn, `cnnc check` must exit 1,
# print the line in NAME.expect, and raise no sanitizer report. Big and
# binary inputs are generated into build/bad/ here rather than committed.
# Prints one RESULT line (files x binaries) for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
out=build/bad
mkdir -p "$out"
export ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=halt_on_error=1:exitcode=87:print_stacktrace=1

# ---- generated cases: NAME.cnn, and NAME.expect (a line, or a pattern with ~)
gen() { # name, expected line (or "~regex")
  printf '%s\n' "$2" >"$out/$1.expect"
}
H=$'network t;\ninput 28x28x1;\n'
# Ten million copies of one byte.
ten_mb() { head -c 10000000 /dev/zero | tr '\0' "$1"; }
{ printf '%sconv(' "$H"; ten_mb 1; printf ');\ngap;\n'; } >"$out/long_number.cnn"
gen long_number "$out/long_number.cnn:3:6: error: number '11111111111111111111...' is too long"
{ printf '%sconv(' "$H"; ten_mb a; printf ');\ngap;\n'; } >"$out/long_identifier.cnn"
gen long_identifier "$out/long_identifier.cnn:3:6: error: identifier 'aaaaaaaaaaaaaaaaaaaa...' is too long (10000000 bytes)"
{ printf '%s/*' "$H"; ten_mb ' '; printf '*/ pool;\n'; } >"$out/long_line.cnn"
gen long_line "$out/long_line.cnn:3:10000006: error: unknown layer or block 'pool'"
# 10,000 block definitions nested inside each other (not allowed).
{ printf '%s' "$H"; for ((i = 0; i < 10000; i++)); do printf 'block b%d {\n' $i; done
  printf 'relu;\n'; for ((i = 0; i < 10000; i++)); do printf '}\n'; done; printf 'gap;\n'; } >"$out/nested_block_defs.cnn"
gen nested_block_defs "$out/nested_block_defs.cnn:4:1: error: syntax error, unexpected block, expecting residual or identifier or '}'"
# A chain of 10,000 blocks, each calling the next.
{ printf '%sb0;\ngap;\n' "$H"; for ((i = 0; i < 10000; i++)); do printf 'block b%d { b%d; }\n' $i $((i + 1)); done
  printf 'block b10000 { relu; }\n'; } >"$out/block_chain.cnn"
gen block_chain "$out/block_chain.cnn:104:13: error: blocks are nested too deeply (more than 100 levels)"
# 100,000 nested parentheses, and as many unary minuses.
{ printf '%sconv(' "$H"; head -c 100000 /dev/zero | tr '\0' '('; printf '8'; head -c 100000 /dev/zero | tr '\0' ')'; printf ');\ngap;\n'; } >"$out/deep_parens.cnn"
gen deep_parens "~^$out/deep_parens.cnn:3:[0-9]+: error: too deeply nested \\(the parser's limit is 1000 levels\\)$"
{ printf '%sconv(' "$H"; head -c 100000 /dev/zero | tr '\0' '-'; printf '8);\ngap;\n'; } >"$out/deep_minus.cnn"
gen deep_minus "~^$out/deep_minus.cnn:3:[0-9]+: error: too deeply nested"
# NUL bytes in the middle of a statement.
{ printf '%sconv(8);\x00\x00relu;\ngap;\n' "$H"; } >"$out/nul_bytes.cnn"
gen nul_bytes "$out/nul_bytes.cnn:3:9: error: unexpected NUL byte"
# Binary garbage: the compiler's own bytes, raw and as printable text.
head -c 200000 build/cnnc >"$out/binary_garbage.cnn"
gen binary_garbage "~^$out/binary_garbage.cnn:[0-9]+:[0-9]+: error: "
LC_ALL=C tr -cd '[:print:]\n' <build/cnnc | head -c 200000 >"$out/printable_garbage.cnn"
gen printable_garbage "~^$out/printable_garbage.cnn(:[0-9]+:[0-9]+)?: error: "
# 2,000 errors: only the first 20 are reported.
{ printf '%s' "$H"; for ((i = 0; i < 2000; i++)); do printf 'conv(;\n'; done; } >"$out/many_errors.cnn"
gen many_errors "$out/many_errors.cnn: error: too many errors, stopping"
# A missing file.
gen missing_file "cnnc: error: cannot open '$out/missing_file.cnn': No such file or directory"
rm -f "$out/missing_file.cnn"

run=0 failed=0
# Checks one file with one binary against its expectation.
check() { # binary, file, expect-file
  local bin=$1 f=$2 want rc err
  want=$(cat "$3")
  err=$(mktemp)
  timeout 120 "$bin" check "$f" >/dev/null 2>"$err"
  rc=$?
  run=$((run + 1))
  local why=""
  if [ $rc -ne 1 ]; then why="exit status $rc, not 1"
  elif grep -qE 'Sanitizer|runtime error:' "$err"; then why="sanitizer report"
  elif [ "${want:0:1}" = "~" ]; then grep -qE -- "${want:1}" "$err" || why="no line matching: ${want:1}"
  else grep -qxF -- "$want" "$err" || why="missing line: $want"
  fi
  if [ -n "$why" ]; then
    failed=$((failed + 1))
    echo "FAIL $bin $f: $why"
    head -c 2000 "$err" | head -n 20
  fi
  rm -f "$err"
}

for bin in "$@"; do
  [ -x "$bin" ] || { echo "FAIL: no binary $bin"; failed=$((failed + 1)); run=$((run + 1)); continue; }
  for e in tests/bad/*.expect "$out"/*.expect; do
    check "$bin" "${e%.expect}.cnn" "$e"
  done
done
# What only `cnnc build` can refuse: a batch past what static buffers hold.
for bin in "$@"; do
  err=$(mktemp)
  run=$((run + 1))
  timeout 120 "$bin" build models/mnist14k.cnn -o "$out/bigbatch" --batch 1000000 >/dev/null 2>"$err"
  rc=$?
  if [ $rc -ne 1 ] || ! grep -q "with batch 1000000 needs .* GiB of static buffers, more than the 2 GiB" "$err" ||
     grep -qE 'Sanitizer|runtime error:' "$err"; then
    failed=$((failed + 1))
    echo "FAIL $bin build --batch 1000000: status $rc"; head -5 "$err"
  fi
  rm -f "$err"
done
echo "bad-input corpus: $((run - failed)) of $run passed"
echo "RESULT $run $failed"
[ "$failed" -eq 0 ]
