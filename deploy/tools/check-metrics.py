#!/usr/bin/env python3
"""Checks the Grafana dashboard and the metric names used by the dashboard, the
Prometheus rules and the prometheus-adapter rules.

  check-metrics.py --contract deploy/metrics-contract.txt --dashboard D.json
                   --rules R.yaml [--rules ...] --adapter A.yaml [--scrape METRICS.txt]

1. The dashboard JSON parses and is well formed (uid, title, unique panel ids, a
   Prometheus query in every target, unique refIds, grid positions inside 24 columns).
2. Every vllm:* / kitty_* metric any of them queries is in the contract file.
3. With --scrape (a real /metrics body of kitty-serve): every one of those metrics is
   exposed, and every vllm:* / kitty_* sample carries the model_name label.
Exit 0 when all checks pass.
"""
import argparse
import json
import re
import sys

import yaml

NAME_RE = re.compile(r'(?<![A-Za-z0-9_:"])(vllm:[A-Za-z0-9_:]+|kitty_[A-Za-z0-9_]+)')
HIST_SUFFIXES = ("_bucket", "_sum", "_count")
problems = []


def fail(msg):
    problems.append(msg)
    print("  FAIL: " + msg)


def load_contract(path):
    types = {}
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if line:
            name, kind = line.split()
            types[name] = kind
    return types


def dashboard_queries(path):
    try:
        dash = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as e:
        fail(f"{path}: does not parse as JSON: {e}")
        return []
    for key in ("uid", "title", "panels", "schemaVersion"):
        if key not in dash:
            fail(f"{path}: no top-level '{key}'")
    queries, ids = [], set()
    panels = list(dash.get("panels", []))
    for p in list(panels):
        panels.extend(p.get("panels", []))  # panels nested in collapsed rows
    for p in panels:
        title = p.get("title", "?")
        pid = p.get("id")
        if pid in ids or not isinstance(pid, int):
            fail(f"{path}: panel '{title}' has a missing or duplicate id {pid}")
        ids.add(pid)
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
            fail(f"{path}: panel '{title}' has a bad gridPos {g}")
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            fail(f"{path}: panel '{title}' has no query")
        refids = [t.get("refId") for t in targets]
        if len(set(refids)) != len(refids):
            fail(f"{path}: panel '{title}' repeats a refId: {refids}")
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                fail(f"{path}: panel '{title}' target {t.get('refId')} has no expr")
            queries.append((f"dashboard panel '{title}'", expr))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        if v.get("type") == "query" and q:
            queries.append((f"dashboard variable '{v.get('name')}'", q))
    print(f"  dashboard: {len(panels)} panels, {len(queries)} queries")
    return queries


def rule_queries(path):
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    if doc.get("kind") == "PrometheusRule":
        doc = doc["spec"]
    out = []
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            out.append((f"rule '{r.get('record') or r.get('alert')}'", r["expr"]))
    return out


def adapter_queries(path):
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    out = []
    for r in doc.get("rules", {}).get("custom", []):
        out.append(("adapter rule", r["seriesQuery"]))
    return out


def family(name, contract):
    if name in contract:
        return name
    for s in HIST_SUFFIXES:
        if name.endswith(s) and contract.get(name[: -len(s)]) == "histogram":
            return name[: -len(s)]
    return None


def scrape_names(path):
    """Names a scrape exposes, and the vllm:/kitty_ samples lacking model_name."""
    names, unlabelled = set(), set()
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                name, kind = parts[2], parts[3]
                names.add(name)
                if kind == "histogram":
                    names.update(name + s for s in HIST_SUFFIXES)
                if kind == "counter" and not name.endswith("_total"):
                    names.add(name + "_total")
            continue
        m = re.match(r'([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s', line)
        if not m:
            continue
        names.add(m.group(1))
        if m.group(1).startswith(("vllm:", "kitty_")) and "model_name=" not in (m.group(2) or ""):
            unlabelled.add(m.group(1))
    return names, unlabelled


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contract", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--adapter", action="append", default=[])
    ap.add_argument("--scrape")
    a = ap.parse_args()

    contract = load_contract(a.contract)
    queries = dashboard_queries(a.dashboard)
    for r in a.rules:
        queries += rule_queries(r)
    for r in a.adapter:
        queries += adapter_queries(r)

    used = {}  # metric name as queried -> first place it is used
    for where, expr in queries:
        for name in NAME_RE.findall(expr):
            used.setdefault(name, where)
    if not used:
        fail("no vllm:/kitty_ metric found in any query")
    for name, where in sorted(used.items()):
        if family(name, contract) is None:
            fail(f"{where} queries {name}, which is not in {a.contract}")
    fams = {family(n, contract) for n in used} - {None}
    print(f"  {len(used)} metric names used ({len(fams)} of {len(contract)} contract families)")

    if a.scrape:
        names, unlabelled = scrape_names(a.scrape)
        for name, where in sorted(used.items()):
            if name not in names:
                fail(f"{where} queries {name}, which the kitty-serve scrape does not expose")
        for name in sorted(unlabelled):
            fail(f"scrape: {name} has a series without the model_name label")
        missing = sorted(n for n in contract if n not in names and n + "_bucket" not in names)
        if missing:
            print("  note: contract metrics absent from the scrape: " + ", ".join(missing))
        print(f"  scrape: {len(names)} names exposed; all {len(used)} queried names checked")

    if problems:
        print(f"check-metrics: {len(problems)} problem(s)")
        return 1
    print("check-metrics: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
