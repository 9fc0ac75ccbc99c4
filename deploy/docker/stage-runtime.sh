#!/usr/bin/env bash
# Build-stage helper for deploy/Dockerfile and deploy/Dockerfile.cpu:
#   stage-runtime.sh BIN_DIR OUT_DIR
# copies the kitty-* binaries to OUT_DIR/bin and writes OUT_DIR/runtime-packages.txt, the apt
# packages that own the shared libraries they link (libc and the CUDA libraries, which the
# runtime base image provides, left out). The runtime stage installs exactly that list, so
# the image follows the libraries the build really used on either distribution.
set -euo pipefail
bin_dir=$1 out=$2
mkdir -p "$out/bin"
shopt -s nullglob
bins=("$bin_dir"/kitty-*)
((${#bins[@]})) || { echo "stage-runtime.sh: no kitty-* binaries in $bin_dir" >&2; exit 1; }
cp -a "${bins[@]}" "$out/bin/"
ldd "${bins[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
  grep -vE '^/usr/local/cuda|/(libcuda|libnvidia-)[^/]*$' |
  while read -r lib; do
    dpkg-query -S "$lib" 2>/dev/null || dpkg-query -S "$(realpath "$lib")" 2>/dev/null ||
      dpkg-query -S "*/$(basename "$lib")" 2>/dev/null || echo "stage-runtime.sh: no package owns $lib" >&2
  done | cut -d: -f1 | tr ', ' '\n\n' | grep -v '^$' | sort -u |
  grep -vxE 'libc6|libgcc-s1|libstdc\+\+6|cuda-.*|libcublas.*|libnccl.*|libcu(rand|fft|sparse|solver).*' \
    > "$out/runtime-packages.txt" || true
echo "stage-runtime.sh: $(wc -l < "$out/runtime-packages.txt") runtime packages:" $(cat "$out/runtime-packages.txt")
