"""PyTorch scaled_dot_product_attention (bf16) decode peer for kitty_attention_bench.

Same shapes: q [B, 32, 1, 128], k/v [B, 8, ctx+1, 128] bf16, enable_gqa=True (no K/V
repeat), default backend choice and each explicit backend that accepts the inputs. Times are
CUDA-event medians; replicas of K/V keep repeated runs out of L2. Prints a markdown table.

--prefill CxP ... : prefill chunks instead: q [1, 32, C, 128] on k/v [1, 8, P+C, 128], causal
with the chunk at the end (query i sees keys <= P + i): is_causal for P = 0, else a boolean
mask; the same chunk shapes as kitty_attention_bench --prefill.
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


def time_backends(backends, sdpa, label, skip=None):
    """Median time (us) of sdpa(i) under each backend (None: PyTorch's choice) -> cells, best."""
    cells, best = [], None
    for name, be in backends:
        def run(i, be=be):
            if be is None:
                return sdpa(i)
            with sdpa_kernel([be]):
                return sdpa(i)
        try:
            if skip and skip(name):
                raise RuntimeError("skipped (memory)")
            t = median_ms(run) * 1e3
            cells.append(f"{t:.1f}")
            best = t if best is None else min(best, t)
        except Exception as e:  # backend refuses these inputs
            cells.append("n/a")
            print(f"  {name} {label}: {str(e).splitlines()[0][:100]}", file=sys.stderr)
    return cells, best


def prefill(shapes):
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0)}")
    backends = [("default", None), ("flash", SDPBackend.FLASH_ATTENTION),
                ("efficient", SDPBackend.EFFICIENT_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    print("| SDPA bf16 prefill | chunk on prefix | " + " | ".join(f"{n} (us)" for n, _ in backends) +
          " | best TFLOP/s |")
    print("|---|---|" + "---|" * (len(backends) + 1))
    for c, p in shapes:
        L = p + c
        q = torch.randn(1, HQ, c, D, device=dev, dtype=torch.bfloat16)
        k = torch.randn(1, HKV, L, D, device=dev, dtype=torch.bfloat16)
        v = torch.randn(1, HKV, L, D, device=dev, dtype=torch.bfloat16)
        mask = None
        if p > 0:
            qi = torch.arange(c, device=dev).view(c, 1)
            kj = torch.arange(L, device=dev).view(1, L)
            mask = kj <= p + qi
        kw = dict(is_causal=True) if mask is None else dict(attn_mask=mask)
        cells, best = time_backends(
            backends, lambda i: F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kw),
            f"{c} on {p}")
        flops = 4.0 * D * HQ * (c * p + 0.5 * c * (c + 1))
        tf = flops / (best * 1e-6) / 1e12 if best else float("nan")
        print(f"| sdpa | {c} on {p} | " + " | ".join(cells) + f" | {tf:.1f} |", flush=True)


def main():
    if "--prefill" in sys.argv:
        shapes = []
        for i, a in enumerate(sys.argv):
            if a == "--prefill" and i + 1 < len(sys.argv):
                c, p = sys.argv[i + 1].split("x")
                shapes.append((int(c), int(p)))
        return prefill(shapes)
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
        cells, best = time_backends(
            backends,
            lambda i: F.scaled_dot_product_attention(q, ks[i % reps], vs[i % reps], enable_gqa=True),
            f"{bsz}x{ctx}", skip=lambda name: name == "math" and kv_bytes > 3e9)
        bytes_read = kv_bytes + 2 * 2 * bsz * HQ * D
        bw = bytes_read / (best * 1e-6) / 1e9 if best else float("nan")
        print(f"| sdpa | {bsz}x{ctx // 1024}K | " + " | ".join(cells) + f" | {bw:.0f} |", flush=True)
        del ks, vs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
