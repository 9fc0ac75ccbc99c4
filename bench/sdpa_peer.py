"""PyTorch scaled_dot_product_attention (bf16) decode peer for kitty_attention_bench.

Same shapes: q [B, 32, 1, 128], k/v [B, 8, ctx+1, 128] bf16, enable_gqa=True (no K/V
repeat), default backend choice and each explicit backend that accepts the inputs. Times are
CUDA-event medians; replicas of K/V keep repeated runs out of L2. Prints a markdown table.
"""
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [(1, 8192), (8, 8192), (16, 8192), (32, 8192), (64, 8192), (8, 32768)]
HQ, HKV, D = 32, 8, 128


def median_ms(fn, iters=30, warmup=5):
    for _ in range(warmup):
        fn(0)
    ts = []
    for i in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn(i)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0)}")
    backends = [("default", None), ("flash", SDPBackend.FLASH_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                ("math", SDPBackend.MATH)]
    print("| SDPA bf16 | batch x ctx | " + " | ".join(f"{n} (us)" for n, _ in backends) +
          " | best GB/s |")
    print("|---|---|" + "---|" * (len(backends) + 1))
    for bsz, ctx in SHAPES:
        L = ctx + 1
        kv_bytes = 2 * bsz * HKV * L * D * 2
        reps = max(1, min(8, math.ceil(480e6 / kv_bytes)))
        q = torch.randn(bsz, HQ, 1, D, device=dev, dtype=torch.bfloat16)
        ks = [torch.randn(bsz, HKV, L, D, device=dev, dtype=torch.bfloat16) for _ in range(reps)]
        vs = [torch.randn(bsz, HKV, L, D, device=dev, dtype=torch.bfloat16) for _ in range(reps)]
        cells, best = [], None
        for name, be in backends:
            def run(i, be=be):
                if be is None:
                    return F.scaled_dot_product_attention(q, ks[i % reps], vs[i % reps], enable_gqa=True)
                with sdpa_kernel([be]):
                    return F.scaled_dot_product_attention(q, ks[i % reps], vs[i % reps], enable_gqa=True)
            try:
                if name == "math" and kv_bytes > 3e9:
                    raise RuntimeError("skipped (memory)")
                t = median_ms(run) * 1e3
                cells.append(f"{t:.1f}")
                best = t if best is None else min(best, t)
            except Exception as e:  # backend refuses these inputs
                cells.append("n/a")
                print(f"  {name} {bsz}x{ctx}: {str(e).splitlines()[0][:100]}", file=sys.stderr)
        bytes_read = kv_bytes + 2 * 2 * bsz * HQ * D
        bw = bytes_read / (best * 1e-6) / 1e9 if best else float("nan")
        print(f"| sdpa | {bsz}x{ctx // 1024}K | " + " | ".join(cells) + f" | {bw:.0f} |", flush=True)
        del ks, vs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
