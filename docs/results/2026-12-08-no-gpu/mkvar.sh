#!/usr/bin/env bash
# Builds what call1.sh / call2.sh / call3.sh carry, from a clean main checkout built in build/ (Release):
# the base binaries, the patched ones (merged k-step loop fully unrolled, the patch's default,
# in the bundle) and the benches with that loop unrolled 1 and 2. Run from the repository root; leaves the patch applied (git checkout the file after).
set -euo pipefail
d=docs/results/2026-12-08-no-gpu
cmake --build build
rm -rf /tmp/k/var && mkdir -p /tmp/k/var .dev/carry
cp build/bin/kitty_attention_bench /tmp/k/var/kitty_attention_bench_base
cp build/bin/kitty-bench /tmp/k/var/kitty-bench_base
git apply $d/deferred_pv.patch
for u in 1 2; do
  sed -i "s/#define KITTY_MERGED_UNROLL [0-9]*/#define KITTY_MERGED_UNROLL $u/" kernels/cuda/kitty_attention.cu
  cmake --build build --target kitty_attention_bench
  cp build/bin/kitty_attention_bench /tmp/k/var/kitty_attention_bench_u$u
done
sed -i "s/#define KITTY_MERGED_UNROLL [0-9]*/#define KITTY_MERGED_UNROLL 8/" kernels/cuda/kitty_attention.cu
cmake --build build
rm -f .dev/carry/var.tar.xz && tar -cJf .dev/carry/var.tar.xz -C /tmp/k var
EXTRA=build/bin/gemm_bench bash docs/results/2026-12-03c-h200/mkbundle.sh
cp docs/results/2026-12-03b-h200/run.sh .dev/run.sh
cp $d/call1.sh $d/call2.sh $d/call3.sh .dev/
