# The four device calls that produced this folder (run from the repository root on the GPU
# machine; .dev/carry/b.tar.xz = device-bundle.sh of build/bin/{kitty-bench,kitty-serve,*_gpu_test,...} + test data).

# ---- .dev/run.sh
#!/usr/bin/env bash
# Device run: unpack the bundle, run GPU tests and benchmarks, results into $OUT.
set -u
cd "$(dirname "$0")/.."
mkdir -p /tmp/k && tar -xJf .dev/carry/b.tar.xz -C /tmp/k
export LD_LIBRARY_PATH=/tmp/k/bundle/lib:/usr/local/cuda/lib64
export KITTY_TEST_DATA=/tmp/k/data
B=/tmp/k/bundle/bin
R=/tmp/res/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > $R/gpu.txt
date -u > $R/date.txt
step() { echo "=== $1 $(date -u +%T)"; }

# ---- .dev/call1.sh
source .dev/run.sh
step tests
timeout 120 $B/sampling_gpu_test > $R/sampling_gpu_test.log 2>&1; echo "sampling rc=$?"; tail -4 $R/sampling_gpu_test.log
timeout 240 $B/cuda_runner_gpu_test > $R/cuda_runner_gpu_test.log 2>&1; echo "runner rc=$?"; tail -3 $R/cuda_runner_gpu_test.log
step bench
Q="--model synthetic:qwen3-4b --device cuda --kv-cache-memory 16000000000 --input-len 65 --output-len 256 --num-prompts 256 --max-num-seqs 256"
KITTY_STEP_PROFILE=1 timeout 200 $B/kitty-bench throughput $Q --kv-cache-dtype auto,kitty-pro --json > $R/q4b_256.json 2> $R/q4b_256.err; echo "bench rc=$?"
grep -A14 "step profile" $R/q4b_256.err
KITTY_STEP_PROFILE=1 timeout 100 $B/kitty-bench throughput $Q --kv-cache-dtype kitty-pro --sampling-device host --json > $R/q4b_256_host.json 2> $R/q4b_256_host.err; echo "bench host rc=$?"
grep -A14 "step profile" $R/q4b_256_host.err
python3 - <<'PY'
import json,os
for f in ["q4b_256.json","q4b_256_host.json"]:
  try: d=json.load(open(os.environ["OUT"]+"/r/"+f))
  except Exception as e: print(f,e); continue
  for r in d["throughput"]:
    print(f, {k:r.get(k) for k in ["mode","peak_running","output_tokens_per_s","mean_step_time_s","mean_roofline_step_s","roofline_ratio"]})
PY
tar -czf $OUT/r.tgz -C $OUT r

# ---- .dev/call2.sh
source .dev/run.sh
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
run() { # name timeout args...
  local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 300 $R/$n.err | tr '\r' '\n' | tail -2
}
run q4b_8127_auto 170 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype auto
run q4b_8127_kp 300 --model synthetic:qwen3-4b --kv-cache-memory 60000000000 --input-len 65 --output-len 8127 --kv-cache-dtype kitty-pro
run l8b_1k1k 100 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto,kitty-pro
python3 - <<'PY'
import json,os,glob
for f in sorted(glob.glob(os.environ["OUT"]+"/r/*.json")):
  try: d=json.load(open(f))
  except Exception as e: print(f,e); continue
  for r in d["throughput"]:
    print(os.path.basename(f), {k:(round(v,4) if isinstance(v,float) else v) for k,v in r.items() if k in ["mode","num_prompts","peak_running","output_tokens_per_s","mean_step_time_s","mean_roofline_step_s","mean_floor_step_s","roofline_ratio","floor_ratio","matmul_flops_s","num_preemptions"]})
PY
tar -czf $OUT/r.tgz -C $OUT r

# ---- .dev/call3.sh
source .dev/run.sh
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --max-num-seqs 1024 --json"
pack() { tar -czf $OUT/r.tgz -C /tmp/res r; }
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 300 $R/$n.err | tr '\r' '\n' | tail -1; pack; }
# Serving: kitty-serve on loopback, Poisson arrivals at three rates, auto vs kitty-pro.
for mode in auto kitty-pro; do
  step serve_$mode
  $B/kitty-serve --model synthetic:qwen3-4b --device cuda --kv-cache-memory 20000000000 \
    --max-num-seqs 256 --kv-cache-dtype $mode --port 50051 --http-port 8000 > $R/serve_$mode.log 2>&1 &
  sp=$!
  for i in $(seq 120); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)" 2>/dev/null && break; sleep 1; done
  timeout 150 $B/kitty-bench serve --server 127.0.0.1:50051 --input-len 1024 --output-len 512 \
    --range-ratio 0.5 --num-prompts 240 --request-rate 8,16,32 --max-concurrency 1024 --json \
    > $R/serve_$mode.json 2> $R/serve_$mode.err; echo "serve $mode rc=$?"
  python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/metrics').read().decode())" > $R/metrics_$mode.txt
  kill -TERM $sp; wait $sp; pack
done
run l8b_8k1k 170 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --kv-cache-dtype auto,kitty-pro
run q8b_1k1k 110 --model synthetic:qwen3-8b --kv-cache-memory 40000000000 --input-len 1024 --output-len 1024 --kv-cache-dtype auto,kitty-pro
step profile
KITTY_STEP_PROFILE=1 timeout 80 $TB --model synthetic:qwen3-4b --kv-cache-memory 16000000000 --input-len 4096 --output-len 64 --kv-cache-dtype auto,kitty-pro > $R/prof_4k.json 2> $R/prof_4k.err
grep -A12 "step profile" $R/prof_4k.err
python3 - <<'PY'
import json,os,glob
for f in sorted(glob.glob("/tmp/res/r/*.json")):
  try: d=json.load(open(f))
  except Exception as e: print(f,e); continue
  for k,rs in d.items():
    for r in rs:
      print(os.path.basename(f), {a:(round(v,4) if isinstance(v,float) else v) for a,v in r.items() if a in ["mode","num_prompts","peak_running","output_tokens_per_s","mean_step_time_s","mean_floor_step_s","floor_ratio","request_rate","completed","errors","output_throughput","ttft_s","tpot_s"]})
PY
tar -czf $OUT/r.tgz -C /tmp/res r

# ---- .dev/call4.sh
source .dev/run.sh
TB="$B/kitty-bench throughput --device cuda --num-prompts 0 --json"
pack() { tar -czf $OUT/r.tgz -C /tmp/res r; }
run() { local n=$1 t=$2; shift 2; step $n
  timeout $t $TB "$@" > $R/$n.json 2> $R/$n.err; echo "$n rc=$?"; tail -c 300 $R/$n.err | tr '\r' '\n' | tail -1; pack; }
run l8b_8k1k_auto 75 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --max-num-seqs 1024 --kv-cache-dtype auto
run l8b_8k1k_kp64 200 --model synthetic:llama3-8b --kv-cache-memory 40000000000 --input-len 8192 --output-len 1024 --max-num-seqs 64 --kv-cache-dtype kitty-pro
python3 - <<'PY'
import json,glob,os
for f in sorted(glob.glob("/tmp/res/r/*.json")):
  try: d=json.load(open(f))
  except Exception as e: print(f,e); continue
  for r in d["throughput"]: print(os.path.basename(f), {a:(round(v,4) if isinstance(v,float) else v) for a,v in r.items() if a in ["mode","num_prompts","peak_running","output_tokens_per_s","mean_step_time_s","mean_floor_step_s","floor_ratio","elapsed_s"]})
PY
