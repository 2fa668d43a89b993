#!/usr/bin/env bash
# models.sh: networks whose data cannot be had here (CIFAR-10 for ResNet-8,
# Speech Commands for DS-CNN) train on data tests/mkdata.c generates (the
# Makefile runs three short epochs of each trainer, --log-csv): the training
# loss must fall, epoch after epoch, below chance (ln classes). Every conv
# of their training code (TRAIN_C) must run on the direct kernels, strided
# ones included: its "// Path:" comment says which.
#   models.sh NAME:LOG_CSV:CLASSES:TRAIN_C ...
set -u
run=0 failed=0
for spec in "$@"; do
  IFS=: read -r name csv classes src <<<"$spec"
  run=$((run + 1))
  if [ ! -s "${src:-}" ]; then
    echo "FAIL $name: no training code ${src:-(none given)}"; failed=$((failed + 1)); continue
  fi
  convs=$(grep -c '^// Path: ' "$src")
  direct=$(grep -c '^// Path: direct kernels' "$src")
  if [ "$convs" -eq 0 ] || [ "$convs" -ne "$direct" ]; then
    echo "FAIL $name: $direct of its $convs convs on the direct kernels ($src)"; failed=$((failed + 1)); continue
  fi
  echo "ok   $name: all $convs convs on the direct kernels"
  if [ ! -s "$csv" ]; then
    echo "FAIL $name: no training log $csv"; failed=$((failed + 1)); continue
  fi
  # epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds
  read -r l1 l2 l3 <<<"$(awk -F, 'NR > 1 { printf "%s ", $3 }' "$csv")"
  chance=$(awk -v k="$classes" 'BEGIN { printf "%.6f", log(k) }')
  if [ -n "${l3:-}" ] && awk -v a="$l1" -v b="$l2" -v c="$l3" -v z="$chance" 'BEGIN { exit !(b < a && c < b && c < z) }'; then
    echo "ok   $name: training loss $l1, $l2, $l3 over three epochs (chance $chance)"
  else
    echo "FAIL $name: training loss ${l1:-?}, ${l2:-?}, ${l3:-?} does not fall below chance $chance"; failed=$((failed + 1))
  fi
done
echo "RESULT $run $failed"
[ "$failed" -eq 0 ]
