#!/usr/bin/env bash
# report.sh: runs cnnc's benchmark and, when Debian's python3-torch is
# installed, the same network in PyTorch, in one run; prints both side by
# side with the ratio cnnc/PyTorch. Usage: report.sh BENCH_BINARY [REPS]
#
# On a CPU with AVX-512 it also times cnnc with OpenBLAS's AVX-512 (SkylakeX)
# kernels: Debian 12's OpenBLAS 0.3.21 does not know AMD Zen 4/5 and picks
# its AVX2 kernels there (later releases pick SkylakeX), and an environment
# may pin OPENBLAS_CORETYPE. PyTorch's convolutions (oneDNN) pick AVX-512 by
# themselves, so that row compares like with like.
#
# The machine's speed drifts over minutes (a shared host), so the runs are
# interleaved: each of REPS rounds runs cnnc, cnnc with AVX-512 BLAS and
# PyTorch once, and every figure is the median over the rounds.
#
# PyTorch allocates every activation afresh. With glibc's defaults a block
# that large is mmap'd and unmapped on free, so each op page-faults its
# output in again; on a VM, where a fault is expensive, that halves
# PyTorch's speed. The table gives PyTorch a malloc that keeps its memory
# (what jemalloc or tcmalloc would do); a last line times it once as
# installed. cnnc allocates nothing during a step.
TORCH_MALLOC="MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456"
set -eu
bench=$1 reps=${2:-5}
here=$(dirname "$0")
avx512=0
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo &&
   grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
  avx512=1
fi
torch=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  torch=1
else
  echo "(python3-torch not installed: PyTorch column empty; 'apt-get install python3-torch' to fill it)"
fi
ours_all="" theirs_all=""
for ((r = 1; r <= reps; r++)); do
  echo "round $r of $reps" >&2
  ours_all+=$("$bench" 1)$'\n'
  if [ "$avx512" = 1 ]; then
    ours_all+=$(OPENBLAS_CORETYPE=SkylakeX "$bench" 1 | sed 's/^\([a-z_0-9]*\) /\1_avx512 /')$'\n'
  fi
  if [ "$torch" = 1 ]; then
    theirs_all+=$(env $TORCH_MALLOC /usr/bin/python3 "$here/torch_mnist14k.py" 1)$'\n'
  fi
done
# The median of each key's values (the text ones, like blas_core, the first).
median() {
  printf '%s' "$1" | awk 'NF == 2 { v[$1] = v[$1] " " $2 }
    END { for (k in v) { n = split(v[k], a, " ")
      if (a[1] !~ /^[0-9.]+$/) { print k, a[1]; continue }
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j] + 0 < a[j - 1] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      print k, (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) } }'
}
ours=$(median "$ours_all")
theirs=$(median "$theirs_all")
get() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
# An epoch's seconds from a median images/s, so the two rows agree.
epoch() { [ -n "$1" ] && awk -v r="$1" 'BEGIN { print 60000 / r }'; }
row() { # label unit higher-is-better(1/0) cnnc-value PyTorch-value
  local a=$4 b=$5 ratio="" fmt="%.0f"
  case $2 in s) fmt="%.2f" ;; us) fmt="%.1f" ;; esac
  if [ -n "$a" ] && [ -n "$b" ]; then
    if [ "$3" = 1 ]; then ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')
    else ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", b / a }'); fi
  fi
  [ -n "$a" ] && a=$(printf "$fmt" "$a")
  [ -n "$b" ] && b=$(printf "$fmt" "$b")
  printf '| %-38s | %12s | %12s | %8s |\n' "$1 ($2)" "${a:--}" "${b:--}" "${ratio:--}"
}
# row for key K of cnnc against key P (default K) of PyTorch.
fig() { row "$1" "$2" "$3" "$(get "$ours" "$4")" "$(get "$theirs" "${5:-$4}")"; }
# the epoch row for images/s key K of cnnc against PyTorch's train_ips_2.
ep() { row "$1" s 0 "$(epoch "$(get "$ours" "$2")")" "$(epoch "$(get "$theirs" train_ips_2)")"; }
echo "| figure (median of $reps)                   |         cnnc |      PyTorch | speed-up |"
echo "|----------------------------------------|-------------:|-------------:|---------:|"
fig "training, 1 thread" "img/s" 1 train_ips_1
fig "training, 2 threads" "img/s" 1 train_ips_2
ep "epoch of 60,000, 2 threads" train_ips_2
fig "evaluation, 2 threads" "img/s" 1 eval_ips
fig "single image, 1 thread" us 0 latency_us
fig "training, 2 thr, native" "img/s" 1 train_ips_2_native train_ips_2
ep "epoch, 2 thr, native" train_ips_2_native
fig "evaluation, native" "img/s" 1 eval_ips_native eval_ips
fig "single image, native" us 0 latency_us_native latency_us
if [ "$avx512" = 1 ]; then
  fig "training, 1 thr, AVX-512 BLAS" "img/s" 1 train_ips_1_avx512 train_ips_1
  fig "training, 2 thr, AVX-512 BLAS" "img/s" 1 train_ips_2_avx512 train_ips_2
  ep "epoch, 2 thr, AVX-512 BLAS" train_ips_2_avx512
  fig "training, 2 thr, both" "img/s" 1 train_ips_2_native_avx512 train_ips_2
  ep "epoch, 2 thr, both" train_ips_2_native_avx512
  fig "evaluation, both" "img/s" 1 eval_ips_native_avx512 eval_ips
fi
printf '\nNo suffix: the default, portable build (baseline x86-64; on x86-64 Linux the generated\nlayer functions carry x86-64-v4 and v3 clones and the direct convs 16-wide AVX-512 kernels,\npicked at run time; the training code ran its %s kernels), with the\nOpenBLAS core in use (%s). native: the same C built with -march=native. AVX-512 BLAS:\nOPENBLAS_CORETYPE=SkylakeX. both: the two together. PyTorch picks its kernels at run time.\n' \
  "$(get "$ours" train_kernels | tr _ ' ')" "$(get "$ours" blas_core)"
# GFLOP/s of a training rate (images/s).
gf() { awk -v a="$1" -v f="$(get "$ours" train_flop)" 'BEGIN { printf "%.0f", a * f * 1e-9 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
g=$(gf "$(get "$ours" train_ips_2)") s2=$(get "$ours" sgemm_gflops_2)
printf '\ncnnc training, 2 threads: %s GFLOP/s, %s of a large cblas_sgemm (%.0f GFLOP/s; 1 thread %.0f).\n' \
  "$g" "$(pct "$g" "$s2")" "$s2" "$(get "$ours" sgemm_gflops_1)"
if [ "$avx512" = 1 ]; then
  g=$(gf "$(get "$ours" train_ips_2_native_avx512)") s2=$(get "$ours" sgemm_gflops_2_avx512)
  printf 'both: %s GFLOP/s, %s of cblas_sgemm with AVX-512 kernels (%.0f GFLOP/s).\n' "$g" "$(pct "$g" "$s2")" "$s2"
fi
# The machine's multiply-add peak and where a step goes, layer by layer
# (the generated code built with -DCNN_TRAIN_PROFILE), in the same run.
layers=$("$bench" layers)
printf '\n%s\n' "$(printf '%s\n' "$layers" | grep -vE '^(layers_step|peak_fma)')"
p2=$(get "$layers" peak_fma_2)
if [ -n "$p2" ]; then
  g=$(gf "$(get "$ours" train_ips_2)")
  printf '\ncnnc training, 2 threads (the rounds above): %s GFLOP/s, %s of the 2-thread %s-bit FMA peak (%.0f GFLOP/s).\n' \
    "$g" "$(pct "$g" "$p2")" "$(get "$layers" peak_fma_bits)" "$p2"
fi
if [ "$torch" = 1 ]; then
  plain=$(/usr/bin/python3 "$here/torch_mnist14k.py" 1)
  printf '\nPyTorch as installed (glibc malloc defaults, one run): training %.0f img/s on 1 thread, %.0f on 2; evaluation %.0f img/s; one image %.0f us.\n' \
    "$(get "$plain" train_ips_1)" "$(get "$plain" train_ips_2)" "$(get "$plain" eval_ips)" "$(get "$plain" latency_us)"
fi
