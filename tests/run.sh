#!/usr/bin/env bash
# run.sh: runs every test binary given, adds up their RESULT lines, and ends
# with the one line CI reads: "tests: N passed, N failed".
set -u
passed=0 failed=0 broken=()
for t in "$@"; do
  log=$(mktemp)
  echo "== $t"
  "$t" >"$log" 2>&1
  rc=$?
  cat "$log"
  res=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$res" ]; then
    # no RESULT line: the binary crashed or is a plain script; one test
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); broken+=("$t"); fi
    continue
  fi
  read -r _ run nfail <<<"$res"
  passed=$((passed + run - nfail))
  failed=$((failed + nfail))
  if [ $rc -ne 0 ] && [ "$nfail" -eq 0 ]; then failed=$((failed + 1)); fi
  if [ $rc -ne 0 ]; then broken+=("$t"); fi
done
[ ${#broken[@]} -gt 0 ] && printf 'FAILED: %s\n' "${broken[@]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
