#!/usr/bin/env bash
# SASS of a CUDA source without a GPU or cuobjdump: per-kernel instruction mix, or the kernels
# whose mix differs between two checkouts (e.g. to show that a device-code refactor changed no
# instruction before spending device time on it).
#
#   bench/sass_offline.sh FILE.cu                 # instruction mix of every kernel in FILE.cu
#   bench/sass_offline.sh FILE.cu OTHER_TREE      # kernels whose mix differs from OTHER_TREE's
#   KITTY_SASS_KEEP=DIR bench/sass_offline.sh ... # also keep the cubins and .sass listings
#   NVCC_APPEND_FLAGS=-DNAME=VALUE bench/sass_offline.sh ...  # a variant (nvcc's own variable)
#
# Run from the repository root. The CUDA 13 toolkit here ships no cuobjdump / nvdisasm, so this
# fetches Debian 12's nvidia-cuda-toolkit (11.8, non-free) once into build/sass-tools (apt
# download + dpkg -x, nothing is installed) and disassembles with its nvdisasm, after rewriting
# the cubin's ELF header (ABI version and e_flags) to the pre-12.8 encoding that 11.8 reads.
# Counts are static (instructions in the code, not executed); an sm_90 opcode newer than 11.8
# would be decoded wrongly, so treat the listing as an estimate, not as what ncu reports.
set -euo pipefail
[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 FILE.cu [OTHER_TREE]" >&2; exit 2; }
src=$1
other=${2:-}
[[ -f $src ]] || { echo "sass_offline.sh: no such file: $src" >&2; exit 2; }
[[ -z $other || -f $other/$src ]] || { echo "sass_offline.sh: no $src in $other" >&2; exit 2; }
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
command -v "$nvcc" >/dev/null || { echo "sass_offline.sh: nvcc not found ($nvcc)" >&2; exit 2; }

tools=$PWD/build/sass-tools
nvdisasm=$tools/usr/bin/nvdisasm
if [[ ! -x $nvdisasm ]]; then
  echo "sass_offline.sh: fetching nvdisasm (Debian nvidia-cuda-toolkit 11.8) into $tools" >&2
  mkdir -p "$tools/apt/lists/partial"
  echo "deb http://deb.debian.org/debian bookworm non-free" >"$tools/apt/sources.list"
  apt_opts=(-o Dir::Etc::SourceList="$tools/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o Dir::State::Lists="$tools/apt/lists" -o Debug::NoLocking=1)
  apt-get "${apt_opts[@]}" update -qq
  (cd "$tools/apt" && apt-get "${apt_opts[@]}" download nvidia-cuda-toolkit 2>/dev/null)
  dpkg -x "$tools"/apt/nvidia-cuda-toolkit_*.deb "$tools"
fi

work=${KITTY_SASS_KEEP:-$(mktemp -d)}
mkdir -p "$work"
[[ -n ${KITTY_SASS_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT

# $1 tree, $2 output name: cubin -> header rewritten -> listing
disassemble() {
  (cd "$1" && "$nvcc" -DKITTY_HAVE_CUDA=1 -I. -O3 -DNDEBUG -arch=sm_90 -std=c++20 -cubin "$src" \
     -o "$work/$2.cubin")
  python3 - "$work/$2.cubin" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[7], b[8] = 51, 7                       # EI_OSABI / ABI version as CUDA 11.x writes them
struct.pack_into('<I', b, 0x30, 0x5a055a)  # e_flags: sm_90 in the 11.x encoding
open(sys.argv[1], 'wb').write(b)
EOF
  "$nvdisasm" -c "$work/$2.cubin" >"$work/$2.sass"
}

disassemble . this
[[ -z $other ]] || disassemble "$other" other

python3 - "$work/this.sass" ${other:+"$work/other.sass"} <<'EOF'
import collections, re, sys

def parse(path):
    kernels, cur = collections.OrderedDict(), None
    for line in open(path):
        m = re.match(r'\s*\.section\s+\.text\.(\S+?),', line)
        if m:
            # anonymous-namespace names carry a hash of the source: drop it to pair kernels
            cur = re.sub(r'_GLOBAL__N__[0-9a-f_]+', 'ANON', m.group(1))
            kernels[cur] = collections.Counter()
            continue
        m = re.match(r'\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', line)
        if m and cur:
            kernels[cur][m.group(1)] += 1
    return kernels

this = parse(sys.argv[1])
if len(sys.argv) == 2:
    for name, mix in this.items():
        top = ' '.join(f'{op} {n}' for op, n in mix.most_common(8))
        print(f'{sum(mix.values()):7d}  {name}\n         {top}')
    sys.exit(0)
other = parse(sys.argv[2])
changed = 0
for name in sorted(set(this) | set(other)):
    a, b = other.get(name), this.get(name)
    if a is None or b is None:
        print(('only here:  ' if a is None else 'only there: ') + name)
        changed += 1
    elif a != b:
        d = {op: b[op] - a[op] for op in set(a) | set(b) if a[op] != b[op]}
        print(f'{sum(a.values())} -> {sum(b.values())}  {name}\n         {d}')
        changed += 1
print(f'{changed} of {len(set(this) | set(other))} kernels differ in their instruction mix')
EOF
