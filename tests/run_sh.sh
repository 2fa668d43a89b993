#!/usr/bin/env bash
# run_sh.sh: tests tests/run.sh itself, on small stand-in programs: it must
# add up RESULT lines, count a crash or a plain failing script as one
# failure, print the outputs in the order given however the programs end,
# and exit non-zero when anything failed.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/run_sh.XXXXXX")
trap 'rm -rf "$T"' EXIT
n=0 nfail=0
ok() { n=$((n + 1)); echo "ok   - $1"; }
bad() { n=$((n + 1)); nfail=$((nfail + 1)); echo "FAIL - $1${2:+: $2}"; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "$3"; fi; }

# prog NAME BODY: a stand-in test program.
prog() { printf '#!/bin/sh\n%s\n' "$2" >"$T/$1" && chmod +x "$T/$1"; }
prog slow 'sleep 1; echo "slow ran"; echo "RESULT 3 0"'
prog mixed 'echo "RESULT 2 1"; exit 1'
prog plain 'echo "no result line"'
prog crash 'echo "RESULT 4 0"; kill -SEGV $$'
prog fast 'echo "RESULT 1 0"'

TEST_JOBS=2 bash tests/run.sh "$T/slow" "$T/mixed" "$T/plain" "$T/crash" "$T/fast" >"$T/out" 2>&1
rc=$?
last=$(tail -n 1 "$T/out")
# slow 3 + mixed 1 + plain 1 + crash 4 + fast 1 passed; mixed 1 + crash 1 failed
check "the summary adds up RESULT lines and counts a crash as one failure" \
  '[ "$last" = "tests: 10 passed, 2 failed" ]' "$last"
check "a failure makes run.sh exit non-zero" '[ $rc -ne 0 ]' "rc $rc"
order=$(grep '^== ' "$T/out" | sed 's/^== .*\/\([a-z]*\) (.*/\1/' | tr '\n' ' ')
check "outputs come in the order given, not the order the programs end" \
  '[ "$order" = "slow mixed plain crash fast " ]' "$order"
check "each output follows its own header" \
  'grep -A1 "^== .*/slow (" "$T/out" | grep -q "^slow ran$"' "$(head -n 3 "$T/out")"
check "FAILED names the failing programs and only them" \
  '[ "$(grep "^FAILED" "$T/out" | sed "s/.*\///" | tr "\n" " ")" = "mixed crash " ]' "$(grep FAILED "$T/out")"
TEST_JOBS=1 bash tests/run.sh "$T/slow" "$T/fast" >"$T/out1" 2>&1
rc1=$?
check "all passing: exit 0 and the sum, one at a time too" \
  '[ $rc1 -eq 0 ] && [ "$(tail -n 1 "$T/out1")" = "tests: 4 passed, 0 failed" ]' "$(tail -n 1 "$T/out1")"
echo "RESULT $n $nfail"
[ "$nfail" -eq 0 ]
