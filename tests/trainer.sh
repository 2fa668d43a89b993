#!/usr/bin/env bash
# trainer.sh: integration tests of the generated trainer (examples/train.c
# built against generated/mnist14k): determinism, a short real-MNIST run that
# must learn, checkpoint save/eval/exact resume, bad input, and SIGKILL during
# saves, data and checkpoints that do not fit the network, a validation split
# (--valid) that is the run on its two parts. Prints
# "RESULT <run> <failed>" for tests/run.sh.
#
#   bash tests/trainer.sh [TRAINER [MNIST_DIR]]
#
# Optional: BASELINE_TRAINER (-DCNN_NO_CLONES) and WIDE_TRAINER
# (-DCNN_V16_GENERIC) must agree with the default build to rounding and give
# the same bits on any thread count; SAN_TRAINER (the trainer built with ASan/UBSan) runs the --eval
# path under LeakSanitizer and the misfit-data cases; CNNC (build/cnnc) checks
# that `cnnc summary/build --infer --weights` refuse what the trainer refuses;
# RGB_TRAINER (tests/nets/rgb8ch.cnn's) trains on 3-channel files.
#
# Most cases use a small copy of MNIST (3200 train, 1000 test images) so they
# stay quick; the smoke test uses the whole test set.
set -u
TRAINER=${1:-build/mnist14k-train}
DATA=${2:-${MNIST_DIR:-../shared/data/mnist}}
# The whole first epoch (938 batches of 64): after it, seeds 1-3 and the
# kernels' different summing orders gave 96.9-98.0%; after 600 steps they
# spread over 93.7-96.6%, too wide for a fixed bar.
SMOKE_STEPS=${SMOKE_STEPS:-938}
T=$(mktemp -d "${TMPDIR:-/tmp}/trainer.XXXXXX")
trap 'rm -rf "$T"' EXIT
run=0 failed=0
START=$SECONDS

# Records one passed or failed case.
ok() { run=$((run + 1)); echo "ok   - $1"; }
# Records a failure, with optional detail lines on stderr.
bad() {
  run=$((run + 1)) failed=$((failed + 1))
  echo "FAIL - $1"
  shift
  for d in "$@"; do printf '       %s\n' "$d"; done
}
# check DESC CMD...: passes when CMD succeeds.
check() {
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}

# A big-endian u32 as printf escapes.
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }

# mini SPLIT N: the first N images and labels of SPLIT as raw IDX files in $T/mini.
mini() {
  local s=$1 n=$2
  { zcat "$DATA/$s-images-idx3-ubyte.gz" | head -c 4; printf "$(be32 "$n")"
    zcat "$DATA/$s-images-idx3-ubyte.gz" | tail -c +9 | head -c $((8 + n * 784)); } >"$T/mini/$s-images-idx3-ubyte"
  { zcat "$DATA/$s-labels-idx1-ubyte.gz" | head -c 4; printf "$(be32 "$n")"
    zcat "$DATA/$s-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$n"; } >"$T/mini/$s-labels-idx1-ubyte"
}

# The deterministic part of a log: bar lines up to batch_id, and epoch lines.
lines() { grep -E '^(epoch=|Epoch )' "$1" | sed -E 's/: +[0-9]+%\|.*//'; }
# The test-set line of a log (the last one).
testline() { grep -E '^Epoch [0-9]+--Test set' "$1" | tail -n 1; }

# tr ARGS...: runs the trainer on the small data, 2 threads, output in $T/out.
tr_mini() { "$TRAINER" --data "$T/mini" --threads 2 "$@" >"$T/out" 2>&1; }

if [ ! -x "$TRAINER" ] || [ ! -f "$DATA/t10k-images-idx3-ubyte.gz" ]; then
  echo "trainer.sh: need $TRAINER and MNIST (.gz) in $DATA"
  echo "RESULT 1 1"
  exit 1
fi
mkdir -p "$T/mini"
mini train 3200
mini t10k 1000

# ------------------------------------------------------------ (a) determinism
echo "# determinism"
tr_mini --epochs 1 --limit-batches 30 --seed 7 --save "$T/a.ckpt"; rc_a=$?; cp "$T/out" "$T/a.log"
tr_mini --epochs 1 --limit-batches 30 --seed 7; cp "$T/out" "$T/b.log"
tr_mini --epochs 1 --limit-batches 30 --seed 8; cp "$T/out" "$T/c.log"
check "seed 7 run exits 0 and prints its epoch lines" \
  test $rc_a -eq 0 -a "$(grep -c '^Epoch 1--' "$T/a.log")" -eq 2
if [ -n "$(lines "$T/a.log")" ] && [ "$(lines "$T/a.log")" = "$(lines "$T/b.log")" ]; then
  ok "same seed: identical loss and epoch lines"
else
  bad "same seed: identical loss and epoch lines" "$(diff <(lines "$T/a.log") <(lines "$T/b.log") | head -5)"
fi
check "different seed: different loss lines" test "$(lines "$T/a.log")" != "$(lines "$T/c.log")"
# The generated code splits batches over images; the result must not depend on how many threads.
"$TRAINER" --data "$T/mini" --threads 1 --epochs 1 --limit-batches 30 --seed 7 >"$T/t1.log" 2>&1
if [ -n "$(lines "$T/t1.log")" ] && [ "$(lines "$T/t1.log")" = "$(lines "$T/a.log")" ]; then
  ok "1 thread: the same loss and epoch lines as 2 threads"
else
  bad "1 thread: the same loss and epoch lines as 2 threads" "$(diff <(lines "$T/t1.log") <(lines "$T/a.log") | head -4)"
fi
# The baseline build (no clones) sums in the same order but without FMA, the
# 16-wide kernels in another order: their losses agree with the default
# build's to rounding (about 1e-4 after 30 batches; a wrong kernel in either
# is off by far more).
# nums LOG: its losses, then its accuracies in % (marked %), one a line.
nums() { lines "$1" | grep -oE 'loss[=:] *[0-9.]+|\([0-9.]+%' | sed -E 's/loss[=:] *//; s/^\(//'; }
close_logs() {
  paste -d' ' <(nums "$1") <(nums "$2") |
    awk '{ a = $1 + 0; b = $2 + 0; d = a - b; if (d < 0) d = -d }
         NF != 2 { bad = 1 }
         $1 ~ /%$/ { if (d > 1) bad = 1; next }
         { if (d > 2e-3 * (a > 1 ? a : 1)) bad = 1 }
         END { exit NR < 6 || bad }'
}
# other_build TRAINER TAG BATCHES DESC: another build of the same network
# agrees with the default build's to rounding over BATCHES batches, and
# gives the same bits on 1 and 2 threads.
other_build() {
  local t=$1 tag=$2 nb=$3 desc=$4 ref="$T/a.log"
  if [ "$nb" != 30 ]; then
    ref="$T/ref$nb.log"
    "$TRAINER" --data "$T/mini" --threads 2 --epochs 1 --limit-batches "$nb" --seed 7 >"$ref" 2>&1
  fi
  "$t" --data "$T/mini" --threads 2 --epochs 1 --limit-batches "$nb" --seed 7 >"$T/$tag.log" 2>&1
  if [ -n "$(lines "$T/$tag.log")" ] && close_logs "$T/$tag.log" "$ref"; then
    ok "$desc: losses and accuracies within rounding of the default build's"
  else
    bad "$desc: losses and accuracies within rounding of the default build's" \
      "$(diff <(lines "$T/$tag.log") <(lines "$ref") | head -6)"
  fi
  "$t" --data "$T/mini" --threads 1 --epochs 1 --limit-batches "$nb" --seed 7 >"$T/${tag}1.log" 2>&1
  check "$desc: 1 thread gives the same bits as 2" test -n "$(lines "$T/${tag}1.log")" -a \
    "$(lines "$T/${tag}1.log")" = "$(lines "$T/$tag.log")"
}
if [ -n "${BASELINE_TRAINER:-}" ] && [ -x "$BASELINE_TRAINER" ]; then
  other_build "$BASELINE_TRAINER" nc 30 "baseline build (-DCNN_NO_CLONES)"
fi
# The 16-wide kernels as portable code, on any CPU (the default build runs
# them only where the CPU has AVX-512). Their lanes sum in another order and
# without FMA, and training at the one-cycle schedule's rates spreads that:
# after 30 batches the test loss differs by 2e-3, after 12 by 1e-5.
if [ -n "${WIDE_TRAINER:-}" ] && [ -x "$WIDE_TRAINER" ]; then
  other_build "$WIDE_TRAINER" wide 12 "16-wide kernels (-DCNN_V16_GENERIC)"
  check "16-wide build: the trainer says which kernels it runs" \
    grep -q "^[a-z0-9_]*: kernels 16-wide portable vector code" "$T/wide.log"
fi
# The bar of a pipe: a few lines per epoch, never a carriage return.
check "non-tty output: 4 bar lines, no \\r" \
  test "$(grep -c '^epoch=1 loss=' "$T/a.log")" -eq 4 -a "$(grep -c $'\r' "$T/a.log")" -eq 0

# ------------------------------------------------ (c) checkpoint save/eval/resume
echo "# checkpoints ($((SECONDS - START)) s so far)"
check "--save wrote a checkpoint" test -s "$T/a.ckpt"
"$TRAINER" --data "$T/mini" --threads 2 --eval "$T/a.ckpt" >"$T/e.log" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -n "$(testline "$T/a.log")" ] && [ "$(testline "$T/e.log")" = "$(testline "$T/a.log")" ]; then
  ok "--eval reproduces the saved epoch's test line"
else
  bad "--eval reproduces the saved epoch's test line" "rc=$rc" "train: $(testline "$T/a.log")" "eval:  $(testline "$T/e.log")"
fi
# Resume to epoch 2 against an uninterrupted 2-epoch run: same lines, same file.
cp "$T/a.ckpt" "$T/r.ckpt"
tr_mini --epochs 2 --limit-batches 30 --resume "$T/r.ckpt" --save "$T/r.ckpt"; rc_r=$?; cp "$T/out" "$T/r.log"
tr_mini --epochs 2 --limit-batches 30 --seed 7 --save "$T/f.ckpt"; rc_f=$?; cp "$T/out" "$T/f.log"
check "resume runs epoch 2 only" test $rc_r -eq 0 -a "$(grep -c '^Epoch 1--' "$T/r.log")" -eq 0 \
  -a "$(grep -c '^Epoch 2--' "$T/r.log")" -eq 2
if [ $rc_f -eq 0 ] && [ -n "$(lines "$T/r.log")" ] &&
   [ "$(lines "$T/r.log")" = "$(lines "$T/f.log" | grep -E '^(epoch|Epoch) ?=?2')" ]; then
  ok "resumed epoch 2 = uninterrupted epoch 2 (loss, train and test lines)"
else
  bad "resumed epoch 2 = uninterrupted epoch 2 (loss, train and test lines)" \
    "$(diff <(lines "$T/r.log") <(lines "$T/f.log" | grep -E '^(epoch|Epoch) ?=?2') | head -6)"
fi
check "resumed and uninterrupted checkpoints are byte-identical" cmp -s "$T/r.ckpt" "$T/f.ckpt"
tr_mini --epochs 2 --resume "$T/f.ckpt"
rc=$?
check "resume with nothing left to do exits 0 and says so" \
  eval '[ $rc -eq 0 ] && grep -q "nothing to do" "$T/out" && ! grep -q "^Epoch" "$T/out"'

# --------------------------------------------------------------- (d) bad input
echo "# bad input ($((SECONDS - START)) s so far)"
# expect_fail DESC WORD ARGS...: non-zero exit below 128, WORD in the message, no sanitizer/crash text.
expect_fail() {
  local d=$1 word=$2
  shift 2
  "$TRAINER" "$@" >"$T/bad.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$word" "$T/bad.log" &&
     ! grep -qiE 'sanitizer|segmentation|core dumped' "$T/bad.log"; then
    ok "$d (exit $rc)"
  else
    bad "$d" "exit $rc, want non-zero < 128 and '$word' in:" "$(head -3 "$T/bad.log")"
  fi
}
# Byte N of FILE set to the byte given as a printf escape.
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# One edit (sed -E, same length) of a v3 checkpoint's JSON header, then its
# "crc32" digits made right: the CRC32 of the file with them as zeros
# (gzip's trailer holds the same CRC, little-endian).
edit_ckpt() {
  LC_ALL=C sed -i -E "$2" "$1"
  LC_ALL=C sed -i -E '0,/"crc32":"[0-9a-f]{8}"/s//"crc32":"00000000"/' "$1"
  local crc
  crc=$(gzip -c <"$1" | tail -c 8 | head -c 4 | od -An -tx4 | tr -d ' \n')
  LC_ALL=C sed -i -E "0,/\"crc32\":\"00000000\"/s//\"crc32\":\"$crc\"/" "$1"
}
cp "$T/a.ckpt" "$T/flip.ckpt"
poke "$T/flip.ckpt" 1000 '\x55'
poke "$T/flip.ckpt" 1001 '\xaa'
expect_fail "--eval of a checkpoint with flipped bytes" "$T/flip.ckpt" --data "$T/mini" --eval "$T/flip.ckpt"
head -c 100 "$T/a.ckpt" >"$T/short.ckpt"
expect_fail "--eval of a truncated checkpoint" "$T/short.ckpt" --data "$T/mini" --eval "$T/short.ckpt"
head -c 5000 "$T/a.ckpt" >"$T/cut.ckpt"
expect_fail "--resume of a checkpoint cut short" "$T/cut.ckpt" --data "$T/mini" --resume "$T/cut.ckpt"
: >"$T/empty.ckpt"
expect_fail "--eval of an empty file" "$T/empty.ckpt" --data "$T/mini" --eval "$T/empty.ckpt"
expect_fail "--eval of a missing checkpoint" "$T/nope.ckpt" --data "$T/mini" --eval "$T/nope.ckpt"
expect_fail "--eval of a directory" "$T/mini" --data "$T/mini" --eval "$T/mini"
expect_fail "--eval of a non-checkpoint" "$T/mini/t10k-labels-idx1-ubyte" --data "$T/mini" \
  --eval "$T/mini/t10k-labels-idx1-ubyte"
# Another network's checkpoint: a valid file (CRC redone) with another name, or another shape hash.
cp "$T/a.ckpt" "$T/other.ckpt"
edit_ckpt "$T/other.ckpt" 's/"network":"./"network":"Z/'
# (edit_ckpt itself: an edit that changes nothing gives back the same bytes)
cp "$T/a.ckpt" "$T/same.ckpt" && edit_ckpt "$T/same.ckpt" 's/"epoch":"/"epoch":"/'
check "edit_ckpt recomputes the checkpoint's own CRC" cmp -s "$T/a.ckpt" "$T/same.ckpt"
expect_fail "--eval of another network's checkpoint (name)" "$T/other.ckpt" --data "$T/mini" --eval "$T/other.ckpt"
grep -q "network 'Z" "$T/bad.log" && ok "the message names the other network" ||
  bad "the message names the other network" "$(head -2 "$T/bad.log")"
cp "$T/a.ckpt" "$T/hash.ckpt"
edit_ckpt "$T/hash.ckpt" 's/"shape_hash":"0/"shape_hash":"1/;t;s/"shape_hash":"[1-9a-f]/"shape_hash":"0/'
expect_fail "--resume of a checkpoint with another shape hash" "$T/hash.ckpt" --data "$T/mini" --resume "$T/hash.ckpt"
grep -q "shape hash" "$T/bad.log" && ok "the message says the shape hash differs" ||
  bad "the message says the shape hash differs" "$(head -2 "$T/bad.log")"
if [ -n "${OTHER_TRAINER:-}" ] && [ -x "$OTHER_TRAINER" ]; then
  "$OTHER_TRAINER" --data "$T/mini" --threads 2 --epochs 1 --limit-batches 1 --save "$T/real-other.ckpt" >/dev/null 2>&1
  check "$OTHER_TRAINER writes a checkpoint" test -s "$T/real-other.ckpt"
  expect_fail "--eval of a checkpoint from $(basename "$OTHER_TRAINER")" "$T/real-other.ckpt" \
    --data "$T/mini" --eval "$T/real-other.ckpt"
fi
expect_fail "--data of a missing directory" "/nonexistent" --data /nonexistent --epochs 1
mkdir -p "$T/halfdata" && cp "$T/mini/t10k-"* "$T/halfdata/"
expect_fail "--data without the train files" "$T/halfdata" --data "$T/halfdata" --epochs 1
expect_fail "an unknown option" "--frobnicate" --frobnicate 3
expect_fail "an option without its value" "--epochs" --data "$T/mini" --epochs
expect_fail "--epochs 0" "--epochs" --data "$T/mini" --epochs 0
expect_fail "--epochs not a number" "--epochs" --data "$T/mini" --epochs 2x
expect_fail "--limit-batches -1" "--limit-batches" --data "$T/mini" --limit-batches -1
expect_fail "--threads 0" "--threads" --data "$T/mini" --threads 0
expect_fail "--save into a missing directory" "$T/no/dir/x.ckpt" --data "$T/mini" --threads 2 \
  --epochs 1 --limit-batches 1 --save "$T/no/dir/x.ckpt"

expect_fail "--epochs past its limit states the limit" "--epochs takes a whole number from 1 to 1000000," \
  --data "$T/mini" --epochs 1000000000
expect_fail "--threads past its limit states the limit" "--threads takes a whole number from 1 to 1024," \
  --data "$T/mini" --threads 5000
expect_fail "--eval with --resume is a usage error" "--eval and --resume do not go together" \
  --data "$T/mini" --eval "$T/a.ckpt" --resume "$T/a.ckpt"
expect_fail "--eval with --save is a usage error" "--eval and --save do not go together" \
  --data "$T/mini" --eval "$T/a.ckpt" --save "$T/e2.ckpt"
check "--eval with --resume: exit 2, no evaluation" \
  eval '"$TRAINER" --data "$T/mini" --resume "$T/a.ckpt" --eval "$T/a.ckpt" >"$T/er.log" 2>&1; [ $? -eq 2 ] && ! grep -q "^Epoch" "$T/er.log"'
# --valid N: training on the first images and evaluating on the last N of the
# training file must be the run on a directory holding exactly those two
# splits, bit for bit, and must not read the test files at all.
echo "# --valid"
# part SRC_SPLIT DIR DST_SPLIT FIRST N: images FIRST..FIRST+N-1 of $T/mini's SRC_SPLIT as DIR's DST_SPLIT.
part() {
  local src=$T/mini/$1 dst=$2/$3
  { head -c 4 "$src-images-idx3-ubyte"; printf "$(be32 "$5")"; tail -c +9 "$src-images-idx3-ubyte" | head -c 8
    tail -c +$((17 + $4 * 784)) "$src-images-idx3-ubyte" | head -c $(($5 * 784)); } >"$dst-images-idx3-ubyte"
  { head -c 4 "$src-labels-idx1-ubyte"; printf "$(be32 "$5")"
    tail -c +$((9 + $4)) "$src-labels-idx1-ubyte" | head -c "$5"; } >"$dst-labels-idx1-ubyte"
}
mkdir -p "$T/vsplit" "$T/vonly"
part train "$T/vsplit" train 0 2200
part train "$T/vsplit" t10k 2200 1000
# Test files that would fail to load: --valid must not read them.
cp "$T/mini/train-"* "$T/vonly/"
echo garbage >"$T/vonly/t10k-images-idx3-ubyte"
echo garbage >"$T/vonly/t10k-labels-idx1-ubyte"
"$TRAINER" --data "$T/vonly" --threads 2 --epochs 2 --limit-batches 20 --seed 5 --valid 1000 \
  --save "$T/v.ckpt" >"$T/v.log" 2>&1; rc_v=$?
"$TRAINER" --data "$T/vsplit" --threads 2 --epochs 2 --limit-batches 20 --seed 5 >"$T/vs.log" 2>&1
check "--valid 1000 trains without reading the (broken) test files" test $rc_v -eq 0
check "  ... and says what it holds out" \
  grep -q "^validation: the last 1000 training images (training on the first 2200); the test set is not read" "$T/v.log"
if [ -n "$(lines "$T/v.log")" ] && [ "$(lines "$T/v.log")" = "$(lines "$T/vs.log")" ]; then
  ok "  ... the same run as on the first 2200 images, evaluated on the last 1000"
else
  bad "  ... the same run as on the first 2200 images, evaluated on the last 1000" \
    "$(testline "$T/v.log")" "$(testline "$T/vs.log")"
fi
"$TRAINER" --data "$T/vsplit" --threads 2 --eval "$T/v.ckpt" >"$T/ve.log" 2>&1
check "  ... its checkpoint evaluates on those 1000 to the last epoch's line" \
  test "$(testline "$T/ve.log")" = "$(testline "$T/v.log")"
expect_fail "--valid 0" "--valid takes a whole number from 1" --data "$T/mini" --valid 0
expect_fail "--valid of every training image" "cannot hold out 3200 of its 3200 images (1 to 3199)" \
  --data "$T/mini" --epochs 1 --valid 3200
expect_fail "--eval with --valid is a usage error" "--eval and --valid do not go together" \
  --data "$T/mini" --eval "$T/a.ckpt" --valid 100
# Outputs are checked before training: no epoch runs, no temporary file stays.
expect_fail "--log-csv into a missing directory" "$T/no/dir/x.csv" --data "$T/mini" --threads 2 \
  --epochs 1 --limit-batches 1 --log-csv "$T/no/dir/x.csv"
check "  ... fails before the first epoch" eval '! grep -q "^Epoch" "$T/bad.log"'
mkdir -p "$T/csvdir"
expect_fail "--log-csv naming a directory" "$T/csvdir: is a directory" --data "$T/mini" --threads 2 \
  --epochs 1 --limit-batches 1 --log-csv "$T/csvdir"
check "  ... leaves no $T/csvdir.tmp behind" test ! -e "$T/csvdir.tmp"
check "  ... fails before the first epoch" eval '! grep -q "^Epoch" "$T/bad.log"'
mkdir -p "$T/ckdir"
expect_fail "--save naming a directory" "$T/ckdir: is a directory" --data "$T/mini" --threads 2 \
  --epochs 1 --limit-batches 1 --save "$T/ckdir"
check "--save into a missing directory fails before the first epoch" \
  eval '"$TRAINER" --data "$T/mini" --threads 2 --epochs 1 --limit-batches 1 --save "$T/no/x.ckpt" >"$T/sv.log" 2>&1; [ $? -eq 1 ] && ! grep -q "^Epoch" "$T/sv.log"'
# A CSV write that fails mid-run (its name turned into a directory after
# epoch 1's write) stops the run naming the file and removes its .tmp.
"$TRAINER" --data "$T/mini" --threads 2 --epochs 6 --limit-batches 2 --log-csv "$T/race.csv" >"$T/race.log" 2>&1 &
pid=$!
for _ in $(seq 1 1500); do [ -f "$T/race.csv" ] && break; sleep 0.02; done
rm -f "$T/race.csv" && mkdir "$T/race.csv"
wait $pid
rc=$?
check "a failed CSV write mid-run: exit 1, names the file, no .tmp left" \
  eval '[ $rc -eq 1 ] && grep -q "$T/race.csv: rename of $T/race.csv.tmp failed" "$T/race.log" && [ ! -e "$T/race.csv.tmp" ]'
tr_mini --epochs 1 --limit-batches 2 --log-csv "$T/log.csv"
check "--log-csv writes the header and one row per epoch, and no .tmp" \
  eval '[ "$(head -c 6 "$T/log.csv")" = "epoch," ] && [ "$(wc -l <"$T/log.csv")" -eq 2 ] && [ ! -e "$T/log.csv.tmp" ]'

# ------------------------------------------- (f) data that does not fit the network
echo "# data and checkpoints that do not fit the network ($((SECONDS - START)) s so far)"
# idx DIR SPLIT N H W [C]: N images of H x W (x C: a 4-dimensional file) from
# MNIST's pixel bytes, and the first N labels, as raw IDX files in DIR.
idx() {
  local d=$1 s=$2 n=$3 h=$4 w=$5 c=${6:-}
  mkdir -p "$d"
  local name=idx3 magic=2051 dims="$(be32 "$n")$(be32 "$h")$(be32 "$w")" px=$((n * h * w))
  if [ -n "$c" ]; then name=idx4 magic=2052 dims="$dims$(be32 "$c")" px=$((px * c)); fi
  { printf "$(be32 $magic)$dims"; tail -c +17 "$T/mini/train-images-idx3-ubyte" | head -c $px; } \
    >"$d/$s-images-$name-ubyte"
  { printf "$(be32 2049)$(be32 "$n")"; tail -c +9 "$T/mini/$s-labels-idx1-ubyte" | head -c "$n"; } \
    >"$d/$s-labels-idx1-ubyte"
}
idx "$T/big" train 100 32 32 && idx "$T/big" t10k 50 28 28
idx "$T/small" train 100 20 20 && idx "$T/small" t10k 50 28 28
idx "$T/bigtest" train 100 28 28 && idx "$T/bigtest" t10k 50 32 32
idx "$T/rgb" train 100 28 28 3 && idx "$T/rgb" t10k 50 28 28 3
idx "$T/fine" train 100 28 28 && idx "$T/fine" t10k 50 28 28 1
idx "$T/labels" train 100 28 28 && idx "$T/labels" t10k 50 28 28
poke "$T/labels/train-labels-idx1-ubyte" 13 '\x0a'
MAIN_TRAINER=$TRAINER
for tr in "$MAIN_TRAINER" ${SAN_TRAINER:+"$SAN_TRAINER"}; do
  TRAINER=$tr
  tag=$([ "$tr" = "${SAN_TRAINER:-}" ] && echo " (ASan)" || echo "")
  expect_fail "32x32 training images, 28x28 test images$tag" \
    "$T/big/train-images-idx3-ubyte: images are 32x32, the network mnist14k takes 28x28x1" \
    --data "$T/big" --epochs 1 --limit-batches 2
  expect_fail "20x20 training images$tag" \
    "$T/small/train-images-idx3-ubyte: images are 20x20, the network mnist14k takes 28x28x1" \
    --data "$T/small" --epochs 1 --limit-batches 2
  expect_fail "32x32 test images$tag" \
    "$T/bigtest/t10k-images-idx3-ubyte: images are 32x32, the network mnist14k takes 28x28x1" \
    --data "$T/bigtest" --epochs 1 --limit-batches 2
  expect_fail "--eval on 32x32 test images$tag" "$T/bigtest/t10k-images-idx3-ubyte: images are 32x32" \
    --data "$T/bigtest" --eval "$T/a.ckpt"
  expect_fail "3-channel images for a 1-channel network$tag" \
    "$T/rgb/train-images-idx4-ubyte: images have 3 channels (28x28x3), the network mnist14k takes 28x28x1" \
    --data "$T/rgb" --epochs 1 --limit-batches 2
  expect_fail "a training label of 10 for 10 classes$tag" \
    "$T/labels/train-labels-idx1-ubyte: label 10 of item 5 is out of range (expected < 10)" \
    --data "$T/labels" --epochs 1 --limit-batches 2
  "$tr" --data "$T/fine" --threads 2 --epochs 1 --limit-batches 1 >"$T/fine.log" 2>&1
  rc=$?
  check "fitting data (a 4-dimensional test file of one channel) trains$tag" \
    eval '[ $rc -eq 0 ] && grep -q "^Epoch 1--Test set" "$T/fine.log"'
done
TRAINER=$MAIN_TRAINER
# A 3-channel network on N x H x W x C files: trains, saves, evaluates; a
# 1-channel file is refused naming it.
if [ -n "${RGB_TRAINER:-}" ] && [ -x "$RGB_TRAINER" ]; then
  "$RGB_TRAINER" --data "$T/rgb" --threads 2 --epochs 1 --limit-batches 3 --save "$T/rgb.ckpt" >"$T/rgb.log" 2>&1
  rc=$?
  check "3-channel network trains on 28x28x3 IDX files and saves" \
    eval '[ $rc -eq 0 ] && testline "$T/rgb.log" | grep -q "Validation Accuracy: [0-9]*/50 " && [ -s "$T/rgb.ckpt" ]'
  "$RGB_TRAINER" --data "$T/rgb" --threads 1 --epochs 1 --limit-batches 3 >"$T/rgb1.log" 2>&1
  check "  ... the same run on 1 thread gives the same lines" test "$(lines "$T/rgb.log")" = "$(lines "$T/rgb1.log")"
  "$RGB_TRAINER" --data "$T/rgb" --threads 2 --eval "$T/rgb.ckpt" >"$T/rgbe.log" 2>&1
  check "  ... --eval reproduces its test line" test "$(testline "$T/rgbe.log")" = "$(testline "$T/rgb.log")"
  TRAINER=$RGB_TRAINER
  expect_fail "1-channel images for a 3-channel network" \
    "$T/fine/train-images-idx3-ubyte: images have 1 channel (28x28x1), the network rgb8ch takes 28x28x3" \
    --data "$T/fine" --epochs 1 --limit-batches 1
  TRAINER=$MAIN_TRAINER
fi
if [ -n "${SAN_TRAINER:-}" ]; then
  "$SAN_TRAINER" --data "$T/mini" --threads 2 --eval "$T/a.ckpt" >"$T/san-eval.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ] && [ "$(testline "$T/san-eval.log")" = "$(testline "$T/a.log")" ] &&
     ! grep -qi sanitizer "$T/san-eval.log"; then
    ok "--eval under ASan/LeakSanitizer: same test line, nothing leaked"
  else
    bad "--eval under ASan/LeakSanitizer: same test line, nothing leaked" "rc=$rc" "$(grep -A3 -i sanitizer "$T/san-eval.log" | head -6)"
  fi
fi

# A checkpoint records the normalization it was trained with (format v3: in
# its JSON header). NaN as f32 LE for a printf escape.
NAN32='\x00\x00\xc0\x7f'
check "a saved checkpoint is format version 3" grep -aq '"format":"cnnc","version":"3"' "$T/a.ckpt"
cp "$T/a.ckpt" "$T/norm.ckpt"
edit_ckpt "$T/norm.ckpt" 's/"mean":"0.13070000000000001"/"mean":"0.50000000000000000"/'
expect_fail "--resume of a checkpoint trained with another normalize" \
  "$T/norm.ckpt: checkpoint was trained with normalize(mean = 0.5, std = 0.3081), but 'mnist14k' now says normalize(mean = 0.1307, std = 0.3081)" \
  --data "$T/mini" --epochs 2 --resume "$T/norm.ckpt"
expect_fail "--eval of a checkpoint trained with another normalize" "$T/norm.ckpt: checkpoint was trained with normalize" \
  --data "$T/mini" --eval "$T/norm.ckpt"
# Parameter 17 (of the first conv's weight) set to NaN, the CRC made right.
cp "$T/a.ckpt" "$T/nan.ckpt"
poke "$T/nan.ckpt" $((8 + $(od -An -tu8 -N8 "$T/a.ckpt" | tr -d ' ') + 4 * 17)) "$NAN32"
edit_ckpt "$T/nan.ckpt" 's/"epoch":"/"epoch":"/'
expect_fail "--eval of a checkpoint holding a NaN names the file" \
  "$T/nan.ckpt: tensor 'layers.0.weight': value 17 of 144 is NaN" --data "$T/mini" --eval "$T/nan.ckpt"
expect_fail "--resume of a checkpoint holding a NaN names the file" "$T/nan.ckpt: tensor 'layers.0.weight'" \
  --data "$T/mini" --epochs 2 --resume "$T/nan.ckpt"
# The committed checkpoint is format v1 (normalization unknown) and still loads.
if [ -f models/mnist14k.ckpt ]; then
  "$TRAINER" --data "$T/mini" --threads 2 --eval models/mnist14k.ckpt >"$T/v1.log" 2>&1
  rc=$?
  check "--eval of the committed v1 checkpoint (models/mnist14k.ckpt)" \
    eval '[ $rc -eq 0 ] && testline "$T/v1.log" | grep -q "^Epoch 20--Test set"'
fi
if [ -n "${CNNC:-}" ] && [ -x "$CNNC" ] && [ -f models/mnist14k.cnn ]; then
  sed -E 's/normalize\(mean = 0.1307, std = 0.3081\)/normalize(mean = 0.5, std = 0.5)/' models/mnist14k.cnn >"$T/renorm.cnn"
  check "  (renorm.cnn has another normalize)" grep -q 'mean = 0.5, std = 0.5' "$T/renorm.cnn"
  # cnnc_expect_fail DESC WORD ARGS...: like expect_fail, for cnnc.
  cnnc_expect_fail() {
    local d=$1 word=$2
    shift 2
    "$CNNC" "$@" >"$T/cnnc.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$word" "$T/cnnc.log"; then ok "$d (exit $rc)"
    else bad "$d" "exit $rc, want non-zero < 128 and '$word' in:" "$(head -3 "$T/cnnc.log")"; fi
  }
  cnnc_expect_fail "cnnc build --infer: checkpoint trained with another normalize" \
    "$T/a.ckpt: checkpoint was trained with normalize(mean = 0.1307, std = 0.3081), but 'mnist14k' now says normalize(mean = 0.5, std = 0.5)" \
    build "$T/renorm.cnn" -o "$T/inf" --infer --weights "$T/a.ckpt"
  cnnc_expect_fail "cnnc summary --weights: checkpoint trained with another normalize" \
    "$T/a.ckpt: checkpoint was trained with normalize" summary "$T/renorm.cnn" --weights "$T/a.ckpt"
  cnnc_expect_fail "cnnc build --infer: a checkpoint holding a NaN names the file" \
    "$T/nan.ckpt: tensor 'layers.0.weight': value 17 of 144 is NaN" build models/mnist14k.cnn -o "$T/inf" --infer --weights "$T/nan.ckpt"
  check "cnnc build --infer takes the trainer's checkpoint of the same normalize" \
    "$CNNC" build models/mnist14k.cnn -o "$T/inf" --infer --weights "$T/a.ckpt"
  check "cnnc summary --weights takes the committed v1 checkpoint under any normalize" \
    eval '"$CNNC" summary "$T/renorm.cnn" --weights models/mnist14k.ckpt >/dev/null 2>&1'
fi

# ------------------------------------------------------ (e) SIGKILL while saving
echo "# SIGKILL during checkpoint saves ($((SECONDS - START)) s so far)"
# Each round resumes from k.ckpt and saves after every 1-batch epoch; once
# it has saved at least once (so the round advanced, however slow the
# machine), it is killed a different moment later; the checkpoint must
# still load, and its epoch must never go back.
cp "$T/a.ckpt" "$T/k.ckpt"
prev=1 kills=0 evalfail=0 back=0
# mtime NAME: the file's modification time in nanoseconds.
mtime() { date -r "$1" +%s%N 2>/dev/null || echo 0; }
for delay in 0.05 0.3 0.6 0.9 1.3 1.7; do
  m0=$(mtime "$T/k.ckpt")
  "$TRAINER" --data "$T/mini" --threads 2 --epochs 100000 --limit-batches 1 \
    --resume "$T/k.ckpt" --save "$T/k.ckpt" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1200); do # up to 120 s for the first save of the round
    [ "$(mtime "$T/k.ckpt")" != "$m0" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  sleep "$delay"
  kill -9 $pid 2>/dev/null && kills=$((kills + 1))
  wait $pid 2>/dev/null
  "$TRAINER" --data "$T/mini" --threads 2 --eval "$T/k.ckpt" >"$T/k.log" 2>&1 || {
    evalfail=$((evalfail + 1))
    echo "       after kill at ${delay}s past a save: $(head -1 "$T/k.log")"
  }
  ep=$(testline "$T/k.log" | sed -E 's/^Epoch ([0-9]+)--.*/\1/')
  [ -n "$ep" ] && [ "$ep" -lt "$prev" ] && back=$((back + 1))
  prev=${ep:-$prev}
done
check "trainer was killed $kills/6 times mid-run" test $kills -ge 5
check "the checkpoint loads after every kill" test $evalfail -eq 0
check "the checkpoint advanced (epoch $prev) and never went back" test $back -eq 0 -a "$prev" -gt 1
# A kill inside cnn_ckpt_save leaves its temp file behind; count those hits.
echo "       kills that landed inside a save: $(find "$T" -name 'k.ckpt.tmp*' | wc -l)"

# ------------------------------------------------ (b) smoke test on real MNIST
echo "# smoke: $SMOKE_STEPS steps on MNIST"
t0=$SECONDS
"$TRAINER" --data "$DATA" --threads 2 --epochs 1 --limit-batches "$SMOKE_STEPS" --seed 1 >"$T/smoke.log" 2>&1
rc=$?
acc=$(sed -nE 's/^Epoch 1--Test set: .*Validation Accuracy: ([0-9]+)\/10000 .*/\1/p' "$T/smoke.log")
if [ $rc -eq 0 ] && [ -n "$acc" ] && [ "$acc" -ge 9600 ]; then
  ok "$SMOKE_STEPS steps reach >= 96% test accuracy ($acc/10000, $((SECONDS - t0)) s)"
else
  bad "$SMOKE_STEPS steps reach >= 96% test accuracy" "rc=$rc: $(testline "$T/smoke.log")"
fi

echo "trainer.sh: $((SECONDS - START)) s"
echo "RESULT $run $failed"
[ $failed -eq 0 ]
