#!/usr/bin/env bash
# infer_nets.sh: runs tests/infer_nets.c on each network and adds up its
# RESULT lines.
#   infer_nets.sh BIN OUTDIR DATADIR:NET.cnn:CKPT:TOL ...
set -u
bin=$1 out=$2
shift 2
run=0 failed=0
for spec in "$@"; do
  IFS=: read -r data net ckpt tol <<<"$spec"
  name=$(basename "$net" .cnn)
  log=$(mktemp)
  "$bin" "$out/$name" "$data" "$net" "$ckpt" "$tol" >"$log" 2>&1
  rc=$?
  cat "$log"
  res=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$res" ]; then
    echo "FAIL - $name: infer_nets stopped (exit $rc) before its checks"
    run=$((run + 1)) failed=$((failed + 1))
    continue
  fi
  read -r _ r f <<<"$res"
  run=$((run + r)) failed=$((failed + f))
done
echo "RESULT $run $failed"
[ "$failed" -eq 0 ]
