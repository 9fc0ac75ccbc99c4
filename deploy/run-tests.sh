#!/usr/bin/env bash
# Builds KittyServe and runs the whole test suite:
#   1. Release build (CUDA sources compiled for sm_90 when nvcc exists; GPU tests skip without a
#      device) and every CTest test;
#   2. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (host-only build).
# Usage: deploy/run-tests.sh            (from the repository root; expects install-deps.sh done)
# Env:   KITTY_JOBS (default: nproc), KITTY_SKIP_SANITIZE=1 to skip step 2,
#        KITTY_TEST_DATA (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${KITTY_JOBS:-$(nproc)}
start=$(date +%s)

echo "== [1/2] release build and all tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 1200

if [[ ${KITTY_SKIP_SANITIZE:-0} != 1 ]]; then
  echo "== [2/2] unit tests under ASan+UBSan"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKITTY_SANITIZE=ON -DKITTY_CUDA=OFF \
    -DKITTY_BUILD_SERVER=OFF -DCMAKE_CXX_FLAGS="-O1" >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit --timeout 1800
fi
echo "== all tests passed in $(( $(date +%s) - start )) s"
