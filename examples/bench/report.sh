#!/usr/bin/env bash
# report.sh: runs cnnc's benchmark and, when Debian's python3-torch is
# installed, the same network in PyTorch, in one run; prints both side by
# side with the ratio cnnc/PyTorch. Usage: report.sh BENCH_BINARY [REPS]
set -eu
bench=$1 reps=${2:-5}
here=$(dirname "$0")
ours=$("$bench" "$reps")
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
  printf '| %-36s | %12s | %12s | %8s |\n' "$1 ($3)" "${a:--}" "${b:--}" "${ratio:--}"
}
echo "| figure (median of $reps)                 |         cnnc |      PyTorch | speed-up |"
echo "|--------------------------------------|-------------:|-------------:|---------:|"
row "training, 1 thread" train_ips_1 "img/s" 1
row "training, 2 threads" train_ips_2 "img/s" 1
row "epoch of 60,000, 2 threads" epoch_s_2 "s" 0
row "evaluation, 2 threads" eval_ips "img/s" 1
row "single image, 1 thread" latency_us "us" 0
row "training, 2 thr, native" train_ips_2_native "img/s" 1 train_ips_2
row "epoch, 2 thr, native" epoch_s_2_native "s" 0 epoch_s_2
row "evaluation, native" eval_ips_native "img/s" 1 eval_ips
row "single image, native" latency_us_native "us" 0 latency_us
printf '\nPortable rows: the default build (x86-64 baseline, SSE2). -march=native rows: the same\ngenerated C built for this CPU. PyTorch picks its kernels at run time. OpenBLAS core: %s.\n' \
  "$(get "$ours" blas_core)"
printf '\ncnnc training: %s GFLOP/s on 2 threads; large cblas_sgemm: %s GFLOP/s (2 threads), %s (1 thread): %s of sgemm\n' \
  "$(get "$ours" gflops_2)" "$(get "$ours" sgemm_gflops_2)" "$(get "$ours" sgemm_gflops_1)" \
  "$(awk -v a="$(get "$ours" gflops_2)" -v b="$(get "$ours" sgemm_gflops_2)" 'BEGIN { printf "%.0f%%", 100 * a / b }')"
