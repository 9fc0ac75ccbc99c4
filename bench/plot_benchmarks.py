#!/usr/bin/env python3
"""Plots of a docs/results/<date>-h200 folder of kitty-bench JSON files (gnuplot, PNG).

Usage: bench/plot_benchmarks.py docs/results/2026-12-01-h200 docs/img
  h200_throughput_<date>.png: output tokens/s and peak concurrent sequences per workload, auto vs kitty-pro
  h200_serve_<date>.png:      kitty-bench serve, TTFT p50/p99 and output tokens/s against the request rate
       bench/plot_benchmarks.py --modes OUT.png "TITLE" RUN.json...
  one workload, one bar per kitty-bench throughput JSON: output tokens/s, peak sequences, step vs floor
       bench/plot_benchmarks.py --attention OUT.png "TITLE" MODE LABEL=BENCH.md... [sdpa=SDPA.txt]
  kitty_attention_bench tables (and bench/sdpa_peer.py's best backend): time per shape of MODE
       bench/plot_benchmarks.py --serve OUT.png "TITLE" AUTO.json KITTYPRO.json
  kitty-bench serve JSON of both modes: TTFT p50/p99 and output tokens/s against the request rate
       bench/plot_benchmarks.py --sweep OUT.png "TITLE" RUN.json...
  one workload at several batch sizes (kitty-bench throughput rows, any number per file): output
  tokens/s and step / floor against the peak concurrent sequences, one line per mode
"""
import json
import os
import subprocess
import sys
import tempfile

WORKLOADS = [  # (label, files)
    ("qwen3-4b 65/8127 60GB", ["qwen3_4b_65x8127_60GB_auto.json", "qwen3_4b_65x8127_60GB_kittypro.json"]),
    ("llama3-8b 1024/1024 40GB", ["llama3_8b_1024x1024_40GB.json"]),
    ("qwen3-8b 1024/1024 40GB", ["qwen3_8b_1024x1024_40GB.json"]),
    ("qwen3-4b 65/256 16GB", ["qwen3_4b_65x256_16GB_device_sampling.json"]),
]


def load(folder, name):
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


# gnuplot settings of every bar chart here
BARS = """set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1"""


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def plot_modes(out, title, files):
    """Bars per mode of one workload (one kitty-bench throughput JSON per mode)."""
    tmp = tempfile.mkdtemp()
    dat = os.path.join(tmp, "modes.dat")
    with open(dat, "w") as d:
        for f in files:
            with open(f) as fh:
                for r in json.load(fh)["throughput"]:
                    d.write('"%s" %.0f %d %.2f %.2f\n' % (r["mode"], r["output_tokens_per_s"], r["peak_running"],
                                                       r["mean_step_time_s"] * 1e3, r["mean_floor_step_s"] * 1e3))
    gnuplot(f"""
set terminal png size 1300,460 font ',11'
set output '{out}'
set multiplot layout 1,3 title '{title}'
{BARS}
set grid ytics
set key top left
set yrange [0:*]
set ylabel 'output tokens/s'
plot '{dat}' using 2:xtic(1) notitle
set ylabel 'peak concurrent sequences'
plot '{dat}' using 3:xtic(1) notitle
set ylabel 'decode step (ms)'
plot '{dat}' using 4:xtic(1) title 'measured', '' using 5 title 'floor (roofline)'
unset multiplot
""")


def bench_times(path, mode):
    """{shape: us} of MODE rows of a kitty_attention_bench markdown table."""
    times = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 4 and cells[1] == mode:
                times[cells[2]] = float(cells[3])
    return times


def sdpa_times(path):
    """{shape: best us over the SDPA backends} of bench/sdpa_peer.py's table."""
    times = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 7 and cells[1] == "sdpa":
                vals = [float(c) for c in cells[3:7] if c not in ("n/a", "")]
                times[cells[2]] = min(vals)
    return times


def plot_attention(out, title, mode, series):
    """Grouped bars: time per shape of MODE for each labelled bench file (and SDPA)."""
    cols = []
    for item in series:
        label, path = item.split("=", 1)
        cols.append((label, sdpa_times(path) if label == "sdpa" else bench_times(path, mode)))
    shapes = [s for s in cols[0][1]]
    tmp = tempfile.mkdtemp()
    dat = os.path.join(tmp, "attn.dat")
    with open(dat, "w") as d:
        for shape in shapes:
            d.write('"%s" %s\n' % (shape, " ".join("%.1f" % c[1].get(shape, float("nan")) for c in cols)))
    plots = ", ".join("'%s' using %d%s title '%s'" % (dat if i == 0 else "", i + 2, ":xtic(1)" if i == 0 else "",
                                                       label) for i, (label, _) in enumerate(cols))
    gnuplot(f"""
set terminal png size 1000,460 font ',11'
set output '{out}'
set title '{title}'
{BARS}
set grid ytics
set key top left
set yrange [0:*]
set ylabel 'decode attention, one layer (us)'
plot {plots}
""")


def plot_sweep(out, title, files):
    """Lines per mode: output tokens/s and step / floor against peak concurrent sequences."""
    by_mode = {}
    for f in files:
        with open(f) as fh:
            for r in json.load(fh)["throughput"]:
                by_mode.setdefault(r["mode"], []).append(r)
    tmp = tempfile.mkdtemp()
    dat = os.path.join(tmp, "sweep.dat")
    modes = sorted(by_mode)
    with open(dat, "w") as d:
        for m in modes:
            d.write("# %s\n" % m)
            for r in sorted(by_mode[m], key=lambda r: r["peak_running"]):
                d.write("%d %.0f %.2f\n" % (r["peak_running"], r["output_tokens_per_s"],
                                            r["mean_step_time_s"] / r["mean_floor_step_s"]))
            d.write("\n\n")
    tp = ", ".join("'%s' index %d using 1:2 with linespoints lw 2 pt 7 title '%s'" % (dat if i == 0 else "", i, m)
                   for i, m in enumerate(modes))
    fr = ", ".join("'%s' index %d using 1:3 with linespoints lw 2 pt 7 title '%s'" % (dat if i == 0 else "", i, m)
                   for i, m in enumerate(modes))
    gnuplot(f"""
set terminal png size 1200,480 font ',11'
set output '{out}'
set multiplot layout 1,2 title '{title}'
set grid
set key bottom right
set xlabel 'peak concurrent sequences'
set xrange [0:*]
set yrange [0:*]
set ylabel 'output tokens/s'
plot {tp}
set key top left
set ylabel 'decode step / floor (roofline)'
plot {fr}
unset multiplot
""")


def main():
    if sys.argv[1] == "--sweep":
        return plot_sweep(sys.argv[2], sys.argv[3], sys.argv[4:])
    if sys.argv[1] == "--modes":
        return plot_modes(sys.argv[2], sys.argv[3], sys.argv[4:])
    if sys.argv[1] == "--serve":  # OUT.png TITLE AUTO.json KITTYPRO.json
        return plot_serve(sys.argv[2], sys.argv[3],
                          [("auto", sys.argv[4]), ("kitty-pro", sys.argv[5])])
    if sys.argv[1] == "--attention":
        return plot_attention(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    folder, out = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp()
    dat = os.path.join(tmp, "tp.dat")
    with open(dat, "w") as d:
        for label, files in WORKLOADS:
            rows = {}
            for f in files:
                for r in load(folder, f)["throughput"]:
                    rows[r["mode"]] = r
            a, k = rows["auto"], rows["kitty-pro"]
            d.write('"%s" %.0f %.0f %d %d\n' % (label, a["output_tokens_per_s"], k["output_tokens_per_s"],
                                              a["peak_running"], k["peak_running"]))
    gnuplot(f"""
set terminal png size 1100,520 font ',11'
set output '{out}/h200_throughput_2026-12-01.png'
set multiplot layout 1,2 title 'kitty-bench throughput, H200, synthetic models, same KV budget per mode (2026-12-01)'
{BARS}
set xtics rotate by -20 scale 0
set grid ytics
set key top left
set yrange [0:*]
set ylabel 'output tokens/s'
plot '{dat}' using 2:xtic(1) title 'auto (bf16)', '' using 3 title 'kitty-pro'
set ylabel 'peak concurrent sequences'
plot '{dat}' using 4:xtic(1) title 'auto (bf16)', '' using 5 title 'kitty-pro'
unset multiplot
""")
    plot_serve(f"{out}/h200_serve_2026-12-01.png",
               "kitty-bench serve vs kitty-serve (gRPC, loopback), qwen3-4b, 20 GB KV, "
               "1024/512 tokens +-50% (2026-12-01)",
               [("auto", os.path.join(folder, "serve_qwen3_4b_auto.json")),
                ("kitty-pro", os.path.join(folder, "serve_qwen3_4b_kittypro.json"))])


def plot_serve(out, title, runs):
    """TTFT p50/p99 and output tokens/s against the request rate; runs = [(mode, serve.json)]."""
    sdat = os.path.join(tempfile.mkdtemp(), "serve.dat")
    with open(sdat, "w") as d:
        for mode, f in runs:
            d.write("# %s\n" % mode)
            with open(f) as j:
                for r in json.load(j)["serve"]:
                    d.write("%g %.1f %.1f %.0f\n" % (r["request_rate"], r["ttft_s"]["p50"] * 1e3,
                                                    r["ttft_s"]["p99"] * 1e3, r["output_throughput"]))
            d.write("\n\n")
    gnuplot(f"""
set terminal png size 1100,480 font ',11'
set output '{out}'
set multiplot layout 1,2 title '{title}'
set grid
set xlabel 'request rate (req/s, Poisson)'
set logscale y
set ylabel 'TTFT (ms)'
set key top left
plot '{sdat}' index 0 using 1:2 with linespoints lw 2 title '{runs[0][0]} p50', \\
     '' index 0 using 1:3 with linespoints lw 2 dt 2 title '{runs[0][0]} p99', \\
     '' index 1 using 1:2 with linespoints lw 2 title '{runs[1][0]} p50', \\
     '' index 1 using 1:3 with linespoints lw 2 dt 2 title '{runs[1][0]} p99'
unset logscale y
set ylabel 'output tokens/s'
plot '{sdat}' index 0 using 1:4 with linespoints lw 2 title '{runs[0][0]}', \\
     '' index 1 using 1:4 with linespoints lw 2 title '{runs[1][0]}'
unset multiplot
""")

if __name__ == "__main__":
    main()
