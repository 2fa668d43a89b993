#!/usr/bin/env bash
# models.sh: networks whose data cannot be had here (CIFAR-10 for ResNet-8,
# Speech Commands for DS-CNN) train on data tests/mkdata.c generates: each
# trainer runs three short epochs and its training loss must fall, epoch
# after epoch, below chance (ln classes).
#   models.sh MKDATA NAME:TRAINER:HxWxC:CLASSES:TRAIN_IMAGES ...
set -u
mkdata=$1
shift
run=0 failed=0
for spec in "$@"; do
  IFS=: read -r name trainer dims classes images <<<"$spec"
  IFS=x read -r h w c <<<"$dims"
  dir=$(mktemp -d)
  run=$((run + 1))
  if ! "$mkdata" "$dir" "$h" "$w" "$c" "$classes" "$images" 200 ||
     ! "$trainer" --data "$dir" --epochs 3 --threads 2 --log-csv "$dir/log.csv" >"$dir/out.txt" 2>&1; then
    echo "FAIL $name: the trainer failed"; tail -5 "$dir/out.txt"; failed=$((failed + 1)); rm -rf "$dir"; continue
  fi
  # epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds
  read -r l1 l2 l3 <<<"$(awk -F, 'NR > 1 { printf "%s ", $3 }' "$dir/log.csv")"
  chance=$(awk -v k="$classes" 'BEGIN { printf "%.6f", log(k) }')
  if awk -v a="$l1" -v b="$l2" -v c="$l3" -v z="$chance" 'BEGIN { exit !(b < a && c < b && c < z) }'; then
    echo "ok   $name: training loss $l1, $l2, $l3 over three epochs (chance $chance)"
  else
    echo "FAIL $name: training loss $l1, $l2, $l3 does not fall below chance $chance"; failed=$((failed + 1))
  fi
  rm -rf "$dir"
done
echo "RESULT $run $failed"
[ "$failed" -eq 0 ]
