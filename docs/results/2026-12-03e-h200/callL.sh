source .dev/run.sh
step ncu_mixed
A="$B/kitty_attention_bench --no-copy --iters 3 --mode kitty-pro --shape 267x65-8192"
timeout 200 ncu --clock-control none -k regex:KittyAttentionKernelV2 --launch-skip 2 -c 1 --section SpeedOfLight --section SourceCounters --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy -o $R/prof_mixed $A > $R/ncu_run_mixed.txt 2>&1; echo "ncu rc=$?"
ncu -i $R/prof_mixed.ncu-rep --page details --print-details all > $R/details_mixed.txt 2>&1
ncu -i $R/prof_mixed.ncu-rep --page source --csv --print-source sass > $R/sass_mixed.csv 2>/dev/null; xz -6 $R/sass_mixed.csv
grep -i -E "duration|warp cycles per issued|issued warp|registers" $R/details_mixed.txt | head -8
rm -f $R/*.ncu-rep
run q4b_8127_kp 300 --num-prompts 0 --max-num-seqs 1024 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
step done
