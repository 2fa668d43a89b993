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
set -eu
bench=$1 reps=${2:-5}
here=$(dirname "$0")
ours=$("$bench" "$reps")
avx512=""
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo &&
   grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
  avx512=$(OPENBLAS_CORETYPE=SkylakeX "$bench" "$reps" | sed 's/^\([a-z_0-9]*\) /\1_avx512 /')
  ours=$(printf '%s\n%s\n' "$ours" "$avx512")
fi
theirs=""
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  theirs=$(/usr/bin/python3 "$here/torch_mnist14k.py" "$reps")
else
  echo "(python3-torch not installed: PyTorch column empty; 'apt-get install python3-torch' to fill it)"
fi
get() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
row() { # label key unit higher-is-better(1/0) [PyTorch's key, when not the same]
  local a b ratio=""
  a=$(get "$ours" "$2"); b=$(get "$theirs" "${5:-$2}")
  if [ -n "$a" ] && [ -n "$b" ]; then
    if [ "$4" = 1 ]; then ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }')
    else ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", b / a }'); fi
  fi
  printf '| %-38s | %12s | %12s | %8s |\n' "$1 ($3)" "${a:--}" "${b:--}" "${ratio:--}"
}
echo "| figure (median of $reps)                   |         cnnc |      PyTorch | speed-up |"
echo "|----------------------------------------|-------------:|-------------:|---------:|"
row "training, 1 thread" train_ips_1 "img/s" 1
row "training, 2 threads" train_ips_2 "img/s" 1
row "epoch of 60,000, 2 threads" epoch_s_2 "s" 0
row "evaluation, 2 threads" eval_ips "img/s" 1
row "single image, 1 thread" latency_us "us" 0
row "training, 2 thr, native" train_ips_2_native "img/s" 1 train_ips_2
row "epoch, 2 thr, native" epoch_s_2_native "s" 0 epoch_s_2
row "evaluation, native" eval_ips_native "img/s" 1 eval_ips
row "single image, native" latency_us_native "us" 0 latency_us
if [ -n "$avx512" ]; then
  row "training, 1 thr, AVX-512 BLAS" train_ips_1_avx512 "img/s" 1 train_ips_1
  row "training, 2 thr, AVX-512 BLAS" train_ips_2_avx512 "img/s" 1 train_ips_2
  row "epoch, 2 thr, AVX-512 BLAS" epoch_s_2_avx512 "s" 0 epoch_s_2
  row "training, 2 thr, both" train_ips_2_native_avx512 "img/s" 1 train_ips_2
  row "epoch, 2 thr, both" epoch_s_2_native_avx512 "s" 0 epoch_s_2
  row "evaluation, both" eval_ips_native_avx512 "img/s" 1 eval_ips
fi
printf '\nRows without a suffix: the default build (x86-64 baseline, SSE2) with the OpenBLAS core\nin use (%s). native: the same generated C built with -march=native. AVX-512 BLAS:\nOPENBLAS_CORETYPE=SkylakeX. both: the two together. PyTorch picks its kernels at run time.\n' \
  "$(get "$ours" blas_core)"
printf '\ncnnc training: %s GFLOP/s on 2 threads; large cblas_sgemm: %s GFLOP/s (2 threads), %s (1 thread): %s of sgemm\n' \
  "$(get "$ours" gflops_2)" "$(get "$ours" sgemm_gflops_2)" "$(get "$ours" sgemm_gflops_1)" \
  "$(awk -v a="$(get "$ours" gflops_2)" -v b="$(get "$ours" sgemm_gflops_2)" 'BEGIN { printf "%.0f%%", 100 * a / b }')"
if [ -n "$avx512" ]; then
  printf 'with AVX-512 BLAS and -march=native: %s GFLOP/s on 2 threads; large cblas_sgemm: %s GFLOP/s (2 threads): %s of sgemm\n' \
    "$(awk -v a="$(get "$ours" train_ips_2_native_avx512)" -v f="$(get "$ours" gflops_2)" -v i="$(get "$ours" train_ips_2)" \
       'BEGIN { printf "%.2f", a * f / i }')" "$(get "$ours" sgemm_gflops_2_avx512)" \
    "$(awk -v a="$(get "$ours" train_ips_2_native_avx512)" -v f="$(get "$ours" gflops_2)" -v i="$(get "$ours" train_ips_2)" \
       -v b="$(get "$ours" sgemm_gflops_2_avx512)" 'BEGIN { printf "%.0f%%", 100 * a * f / i / b }')"
fi
