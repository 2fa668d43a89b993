#!/usr/bin/env bash
# run.sh: runs every test binary given, adds up their RESULT lines, and ends
# with the one line CI reads: "tests: N passed, N failed".
# TEST_JOBS (default: the number of cores) tests run at once. Each one's
# output is held until it ends and printed in the order given, with its
# time, so the log reads as a serial run would. Tests run one OpenMP thread
# each unless they ask for more, and waiting threads sleep instead of
# spinning: two suites spinning on two cores slow each other many times over.
set -u
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
dir=$(mktemp -d "${TMPDIR:-/tmp}/run.XXXXXX")
trap 'rm -rf "$dir"' EXIT
tests=("$@")
passed=0 failed=0 broken=() next=0 running=0 start=$(date +%s)

# report I: prints test I's output and time and adds up its result.
report() {
  local i=$1 t=${tests[$1]} rc res run nfail
  rc=$(cat "$dir/$i.rc")
  echo "== $t ($(cat "$dir/$i.time") s)"
  cat "$dir/$i.log"
  res=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$dir/$i.log" | tail -n 1)
  if [ -z "$res" ]; then
    # no RESULT line: the binary crashed or is a plain script; one test
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); broken+=("$t"); fi
    return
  fi
  read -r _ run nfail <<<"$res"
  passed=$((passed + run - nfail))
  failed=$((failed + nfail))
  if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then failed=$((failed + 1)); fi
  if [ "$rc" -ne 0 ]; then broken+=("$t"); fi
}

for ((i = 0; i < ${#tests[@]}; i++)); do
  while [ "$running" -ge "$jobs" ]; do
    wait -n 2>/dev/null || true
    running=$(jobs -rp | wc -l)
  done
  (
    s=$(date +%s)
    "${tests[$i]}" >"$dir/$i.log" 2>&1
    rc=$?
    echo $(($(date +%s) - s)) >"$dir/$i.time"
    echo $rc >"$dir/$i.rc.tmp" && mv "$dir/$i.rc.tmp" "$dir/$i.rc"
  ) &
  running=$((running + 1))
  # print, in order, the tests that have ended
  while [ "$next" -lt "${#tests[@]}" ] && [ -f "$dir/$next.rc" ]; do report "$next"; next=$((next + 1)); done
done
wait
while [ "$next" -lt "${#tests[@]}" ]; do report "$next"; next=$((next + 1)); done
[ ${#broken[@]} -gt 0 ] && printf 'FAILED: %s\n' "${broken[@]}"
echo "run.sh: ${#tests[@]} test programs in $(($(date +%s) - start)) s, $jobs at a time"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
