#!/usr/bin/env bash
# Builds what call1.sh / call2.sh carry, from a clean main checkout built in build/ (Release):
# the base binaries, the patched ones (merged loop unroll 1, in the bundle) and the unroll-2
# bench. Run from the repository root; leaves the patch applied (git checkout the file after).
set -euo pipefail
d=docs/results/2026-12-08-no-gpu
cmake --build build
mkdir -p /tmp/k/var .dev/carry
cp build/bin/kitty_attention_bench /tmp/k/var/kitty_attention_bench_base
cp build/bin/kitty-bench /tmp/k/var/kitty-bench_base
git apply $d/deferred_pv.patch
sed -i 's/#define KITTY_MERGED_UNROLL 1/#define KITTY_MERGED_UNROLL 2/' kernels/cuda/kitty_attention.cu
cmake --build build --target kitty_attention_bench
cp build/bin/kitty_attention_bench /tmp/k/var/kitty_attention_bench_v2
sed -i 's/#define KITTY_MERGED_UNROLL 2/#define KITTY_MERGED_UNROLL 1/' kernels/cuda/kitty_attention.cu
cmake --build build
rm -f .dev/carry/var.tar.xz && tar -cJf .dev/carry/var.tar.xz -C /tmp/k var
bash docs/results/2026-12-03c-h200/mkbundle.sh
cp docs/results/2026-12-03b-h200/run.sh .dev/run.sh
cp $d/call1.sh $d/call2.sh .dev/
