#!/usr/bin/env bash
# Installs everything KittyServe needs to build, test and run on Debian 12 or Ubuntu 24.04.
# Run as root (or through sudo). Idempotent: packages already present are skipped by apt.
# apt packages only; the CUDA toolkit is optional and used when /usr/local/cuda/bin/nvcc exists.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then exec sudo -E bash "$0" "$@"; fi
  echo "install-deps.sh: must run as root (or with sudo available)" >&2
  exit 1
fi

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates clang clang-format
  # libraries (DESIGN.md §8)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libre2-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libopenblas-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # test peers and tools: Python gRPC client, Prometheus server, plots
  python3 python3-grpcio python3-protobuf prometheus gnuplot-nox curl
  # deployment checks (deploy/check-deploy.sh): YAML lint, PyYAML, Node.js for the pinned npm tools
  yamllint python3-yaml nodejs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps.sh: all ${#packages[@]} packages present"
fi

# npm for deploy/check-deploy.sh. Checked by command, not by package: a NodeSource nodejs
# bundles npm (and conflicts with Debian's npm package); Debian's nodejs needs the package.
if ! command -v npm >/dev/null; then
  echo "install-deps.sh: installing npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
