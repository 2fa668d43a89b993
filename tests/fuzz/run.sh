#!/usr/bin/env bash
# run.sh: the fuzzers' part of `make test`. For each harness NAME given:
# replays every reproducer committed in tests/fuzz/crashes/NAME (each must now
# run clean), then fuzzes for SECONDS from the seed corpus tests/fuzz/corpus/NAME
# into a scratch corpus, failing on any crash, leak, timeout or sanitizer report.
# Usage: run.sh FUZZ_BUILD_DIR SECONDS NAME...   Prints one RESULT line.
set -u
cd "$(dirname "$0")/../.."
dir=$1 secs=$2
shift 2
run=0 failed=0
for n in "$@"; do
  bin=$dir/fuzz_$n
  work=$dir/burst/$n
  rm -rf "$work" && mkdir -p "$work/corpus"
  dict=()
  [ -f tests/fuzz/$n.dict ] && dict=(-dict=tests/fuzz/$n.dict)
  # The reproducers: libFuzzer runs each file given as an argument once.
  mapfile -t repro < <(find tests/fuzz/crashes/$n -type f 2>/dev/null | sort)
  if [ ${#repro[@]} -gt 0 ]; then
    run=$((run + 1))
    if "$bin" -timeout=30 -rss_limit_mb=2048 "${repro[@]}" >"$work/replay.log" 2>&1; then
      echo "fuzz $n: ${#repro[@]} reproducers run clean"
    else
      failed=$((failed + 1))
      echo "FAIL fuzz $n: a reproducer in tests/fuzz/crashes/$n fails again"
      grep -E 'Running:|ERROR|SUMMARY|#[0-9]+ ' "$work/replay.log" | head -n 40
    fi
  fi
  # The burst. New inputs go to the scratch corpus, not the committed seeds.
  run=$((run + 1))
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
      -artifact_prefix="$work/crash-" -print_final_stats=1 \
      "$work/corpus" tests/fuzz/corpus/$n >"$work/fuzz.log" 2>&1; then
    echo "fuzz $n: $(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1)"
  else
    failed=$((failed + 1))
    echo "FAIL fuzz $n: crash after fuzzing; reproducer: $(ls "$work"/crash-* 2>/dev/null | head -n 1)"
    grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' "$work/fuzz.log" | tail -n 60
  fi
done
echo "RESULT $run $failed"
[ "$failed" -eq 0 ]
