source .dev/run.sh
step kitty_cuda
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head; grep -B2 -A6 "Failure" $R/kitty_cuda_gpu_test.log | head -20
KITTY_ATTN_FP_PARTS=1 timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test_p1.log 2>&1; echo "kitty_cuda parts1 rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test_p1.log | head
timeout 100 compute-sanitizer --tool memcheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_memcheck.log 2>&1; echo "memcheck rc=$?"; tail -n 1 $R/san_memcheck.log
timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck.log 2>&1; echo "racecheck rc=$?"; tail -n 1 $R/san_racecheck.log
KITTY_ATTN_FP_PARTS=1 timeout 100 compute-sanitizer --tool racecheck $B/kitty_cuda_gpu_test --gtest_filter=*Sanitizer* > $R/san_racecheck_p1.log 2>&1; echo "racecheck p1 rc=$?"; tail -n 1 $R/san_racecheck_p1.log
step runner
timeout 100 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/cuda_runner_gpu_test.log | head; grep -B2 -A8 "Failure" $R/cuda_runner_gpu_test.log | head -20
step decode
S="--shape 64x8192 --shape 32x8192 --shape 8x32768 --shape 8x8192 --shape 1x8192"
g() { grep "^|" $1 | grep -v "^| mode\|---"; }
for i in 1 2; do
timeout 60 .dev/base/kitty_attention_bench_base --iters 30 --mode kitty-pro --mode auto $S > $R/dec_base$i.md 2>&1; echo "base rc=$?"; grep copy $R/dec_base$i.md; g $R/dec_base$i.md
timeout 60 $B/kitty_attention_bench --no-copy --iters 30 --mode kitty-pro --mode auto $S > $R/dec_new$i.md 2>&1; echo "new rc=$?"; g $R/dec_new$i.md
done
step pbench
P="--prefill 2048x6144 --prefill 512x8192 --prefill 128x4096"
timeout 80 .dev/base/kitty_attention_bench_base --no-copy --iters 20 --mode kitty-pro $P > $R/pre_base.md 2>&1; echo "base rc=$?"; g $R/pre_base.md
timeout 80 $B/kitty_attention_bench --no-copy --iters 20 --mode kitty-pro $P > $R/pre_new.md 2>&1; echo "new rc=$?"; g $R/pre_new.md
step ncu_decode
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
timeout 150 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --section SpeedOfLight --section SourceCounters --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy -o $R/prof_dec $A > $R/ncu_run_dec.txt 2>&1; echo "ncu dec rc=$?"
ncu -i $R/prof_dec.ncu-rep --page details --print-details all > $R/details_dec.txt 2>&1
ncu -i $R/prof_dec.ncu-rep --page source --csv --print-source sass > $R/sass_dec.csv 2>/dev/null; xz -6 $R/sass_dec.csv
grep -i -E "duration|warp cycles per issued|issued warp|Instructions Executed  |registers" $R/details_dec.txt | head -10
rm -f $R/*.ncu-rep
step done
