#!/usr/bin/env python3
"""Semantic checks of a rendered overlay (kustomize build output) that schemas cannot see.

  check-manifests.py --overlay gpu|cpu RENDERED.yaml [--adapter ADAPTER.yaml]

Deployment: non-root pod, native gRPC startup/liveness/readiness probes on the health
service (readiness on kitty.v1.Inference), terminationGracePeriodSeconds >= --drain-timeout-s
+ preStop sleep + 10 s, model volume at /models, the ports 50051/8000, nvidia.com/gpu
limits exactly in the gpu overlay; Service, PodDisruptionBudget, ServiceMonitor and HPA
wired to the Deployment (selectors, port names, the adapter's metric name).
"""
import argparse
import re
import sys

import yaml

problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
        print("  FAIL: " + msg)


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--overlay", required=True)
    ap.add_argument("--adapter")
    ap.add_argument("rendered")
    a = ap.parse_args()
    objs = {}
    for d in yaml.safe_load_all(open(a.rendered, encoding="utf-8")):
        if d:
            objs.setdefault(d["kind"], []).append(d)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                 "ServiceMonitor", "PrometheusRule", "ConfigMap", "ServiceAccount"):
        check(len(objs.get(kind, [])) == 1, f"expected one {kind}, found {len(objs.get(kind, []))}")
    if problems:
        return 1
    dep = objs["Deployment"][0]
    tmpl = dep["spec"]["template"]
    pod = tmpl["spec"]
    labels = tmpl["metadata"]["labels"]
    c = next(x for x in pod["containers"] if x["name"] == "kitty-serve")
    args = c.get("args", [])

    def flag(name):
        vals = [x.split("=", 1)[1] for x in args if x.startswith(f"--{name}=")]
        return vals[-1] if vals else None

    # non-root
    sc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and (sc.get("runAsUser") or 0) > 0, "pod must run as a non-root uid")
    check(csc.get("allowPrivilegeEscalation") is False, "container must set allowPrivilegeEscalation: false")
    # ports
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("grpc") == 50051 and flag("port") == "50051", "gRPC must be on 50051 (--port and containerPort)")
    check(ports.get("metrics") == 8000 and flag("http-port") == "8000", "HTTP must be on 8000 (--http-port and containerPort)")
    check(flag("host") == "0.0.0.0", "--host must be 0.0.0.0 inside a pod")
    # probes
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        g = c.get(probe, {}).get("grpc")
        check(g is not None and g.get("port") == 50051, f"{probe} must be a native gRPC probe on port 50051")
    rp = c.get("readinessProbe", {}).get("grpc", {})
    check(rp.get("service") == "kitty.v1.Inference", "readinessProbe must check service kitty.v1.Inference")
    sp = c.get("startupProbe", {})
    budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
    need = 1200 if a.overlay == "gpu" else 300
    check(budget >= need, f"startupProbe allows {budget} s for weight loading, want >= {need} s")
    # drain
    drain = flag("drain-timeout-s")
    check(drain is not None and drain.isdigit(), "--drain-timeout-s must be set to a number of seconds")
    pre = c.get("lifecycle", {}).get("preStop", {})
    pre_s = 0
    if "sleep" in pre:
        pre_s = int(pre["sleep"]["seconds"])
    elif "exec" in pre:
        cmd = pre["exec"]["command"]
        m = re.fullmatch(r"\d+", cmd[-1]) if cmd and cmd[0].endswith("sleep") else None
        pre_s = int(cmd[-1]) if m else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if drain and drain.isdigit():
        check(grace >= int(drain) + pre_s + 10,
              f"terminationGracePeriodSeconds {grace} < --drain-timeout-s {drain} + preStop {pre_s} + 10 s margin")
        check(grace <= int(drain) + pre_s + 120, f"terminationGracePeriodSeconds {grace} is far above the drain timeout {drain}")
    # model volume
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    check("/models" in mounts, "the model volume must be mounted at /models")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    if "/models" in mounts:
        check(mounts["/models"].get("readOnly") is True, "/models must be mounted read-only")
        v = vols.get(mounts["/models"]["name"], {})
        if a.overlay == "gpu":
            check("persistentVolumeClaim" in v, "gpu overlay: /models must come from a PersistentVolumeClaim")
    # GPUs
    limits = c.get("resources", {}).get("limits", {})
    if a.overlay == "gpu":
        check(str(limits.get("nvidia.com/gpu", "")) not in ("", "0"), "gpu overlay: nvidia.com/gpu limit missing")
        check(flag("device") == "cuda", "gpu overlay: --device=cuda missing")
    else:
        check("nvidia.com/gpu" not in limits, f"{a.overlay} overlay must not request GPUs")
        check(flag("device") == "cpu", f"{a.overlay} overlay: --device=cpu missing")
    # every $(VAR) in args is defined by the ConfigMap the container imports
    cm = objs["ConfigMap"][0]
    env_cms = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
    check(cm["metadata"]["name"] in env_cms, "container must import the kitty-serve-config ConfigMap")
    for arg in args:
        for var in re.findall(r"\$\(([A-Za-z0-9_]+)\)", arg):
            check(var in cm.get("data", {}), f"arg {arg} uses $({var}), which the ConfigMap does not define")
    # Service
    svc = objs["Service"][0]
    check(selects(svc["spec"].get("selector"), labels), "Service selector does not match the pod labels")
    sports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(sports.get("grpc", {}).get("port") == 50051, "Service must expose grpc on 50051")
    check(sports.get("metrics", {}).get("port") == 8000, "Service must expose metrics on 8000")
    # PDB
    pdb = objs["PodDisruptionBudget"][0]
    check(selects(pdb["spec"].get("selector", {}).get("matchLabels"), labels), "PodDisruptionBudget selector does not match the pod labels")
    # ServiceMonitor
    sm = objs["ServiceMonitor"][0]
    check(selects(sm["spec"]["selector"].get("matchLabels"), svc["metadata"].get("labels", {})),
          "ServiceMonitor selector does not match the Service labels")
    for ep in sm["spec"]["endpoints"]:
        check(ep.get("port") in sports, f"ServiceMonitor endpoint port {ep.get('port')} is not a Service port name")
        check(ep.get("path", "/metrics") == "/metrics", "ServiceMonitor must scrape /metrics")
    # HPA
    hpa = objs["HorizontalPodAutoscaler"][0]
    ref = hpa["spec"]["scaleTargetRef"]
    check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], "HPA does not target the Deployment")
    check("replicas" not in dep["spec"], "Deployment must leave replicas to the HPA")
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    check(names, "HPA must scale on a Pods metric")
    if a.adapter:
        adapter = yaml.safe_load(open(a.adapter, encoding="utf-8"))
        served = {r["name"]["as"] for r in adapter["rules"]["custom"]}
        for n in names:
            check(n in served, f"HPA metric {n} is not served by the prometheus-adapter rules")
        for r in adapter["rules"]["custom"]:
            if r["name"]["as"] in names:
                check("vllm:num_requests_waiting" in r["seriesQuery"], "HPA must scale on vllm:num_requests_waiting")
    if problems:
        print(f"check-manifests ({a.overlay}): {len(problems)} problem(s)")
        return 1
    print(f"check-manifests ({a.overlay}): OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
