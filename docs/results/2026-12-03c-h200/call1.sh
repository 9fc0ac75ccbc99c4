source .dev/run.sh
step model_ops
timeout 60 $B/model_ops_gpu_test > $R/model_ops_gpu_test.log 2>&1; echo "model_ops rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/model_ops_gpu_test.log; grep -A6 Failure $R/model_ops_gpu_test.log | head -20
step tests
timeout 200 $B/kitty_cuda_gpu_test > $R/kitty_cuda_gpu_test.log 2>&1; echo "kitty_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED) |FAILED  \]" $R/kitty_cuda_gpu_test.log | head
step ncu_prefill
for c in "kitty-pro 2048x6144" "auto 2048x0"; do set -- $c
A="$B/kitty_attention_bench --no-copy --iters 2 --mode $1 --prefill $2"
timeout 150 ncu --clock-control none -k regex:KittyPrefillKernel --launch-skip 1 -c 1 --section SpeedOfLight --section SourceCounters --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis -o $R/prof_$1 $A > $R/ncu_run_$1.txt 2>&1; echo "ncu $1 rc=$?"; tail -2 $R/ncu_run_$1.txt
ncu -i $R/prof_$1.ncu-rep --page details --print-details all > $R/details_$1.txt 2>&1
ncu -i $R/prof_$1.ncu-rep --page source --csv --print-source sass > $R/sass_$1.csv 2>/dev/null; xz -6 $R/sass_$1.csv
grep -i -E "duration|stall|warp cycles|executed ipc|issue slots|registers|achieved occupancy|theoretical occupancy|compute \(sm\)|memory throughput|shared memory config|bank" $R/details_$1.txt | head -40
done
step ncu_decode
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 64x8192"
timeout 150 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --section SpeedOfLight --section SourceCounters --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy -o $R/prof_dec $A > $R/ncu_run_dec.txt 2>&1; echo "ncu dec rc=$?"
ncu -i $R/prof_dec.ncu-rep --page details --print-details all > $R/details_dec.txt 2>&1
ncu -i $R/prof_dec.ncu-rep --page source --csv --print-source sass > $R/sass_dec.csv 2>/dev/null; xz -6 $R/sass_dec.csv
grep -i -E "duration|stall|warp cycles|executed ipc|issue slots|registers" $R/details_dec.txt | head -30
rm -f $R/*.ncu-rep
step done
