#!/usr/bin/env bash
# Packs what benches/gpu.sh needs on a GPU machine that has python3 with torch 2.11 but no
# Rust: gadms-run and the plugins it loads (losses, masking, synthetic-persons), the golden
# parity test executables (and the library's unit tests, for the CUDA memory probe), the
# golden files they read, and the scripts and spec. Binaries are stripped; the folder is also
# written as one .tar.xz, which must stay well under the 64 MiB a device call carries.
#
# Usage: benches/package-gpu.sh [DIR]   (default target/gpu-package; the archive is DIR.tar.xz)
# On the GPU machine: python3 -c "import tarfile; tarfile.open('DIR.tar.xz').extractall('/tmp')"
# then bash /tmp/gpu-package/gpu.sh (GPU_SH_OUT=... for the results).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-target/gpu-package}
golden=${GADMS_GOLDEN_DIR:-tests/golden/data}
limit_mib=56

# cargo finds the project-local libtorch through .cargo/config.toml (after `make build`).
plugins=(gadms-losses gadms-masking gadms-synthetic-persons)
cargo build --release -p gadms $(printf -- '-p %s ' "${plugins[@]}")
# The test executables' paths, from cargo's own report of what it built.
tests=$(cargo test --release -p gadms --lib --test model_parity --test step_parity --no-run \
  --message-format=json | .venv/bin/python -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        kind = m["target"]["kind"][0]
        print(("gadms-lib" if kind == "lib" else m["target"]["name"]) + " " + m["executable"])
')

rm -rf "$dest" "$dest.tar.xz"
mkdir -p "$dest/bin" "$dest/tests" "$dest/golden"
strip -o "$dest/bin/gadms-run" target/release/gadms-run
for p in "${plugins[@]}"; do
  lib=lib${p//-/_}.so
  strip -o "$dest/bin/$lib" "target/release/$lib"
done
while read -r name exe; do
  strip -o "$dest/tests/$name" "$exe"
done <<<"$tests"
for t in gadms-lib model_parity step_parity; do
  [[ -x $dest/tests/$t ]] || { echo "package-gpu.sh: cargo built no $t test executable" >&2; exit 1; }
done
# model_parity and step_parity read these three.
cp "$golden"/{manifest.json,model.safetensors,model_io.safetensors} "$dest/golden/"
cp benches/{gpu.sh,gpu_summary.py,pytorch_step.py,gpu-pretrain.toml,nccl-check.toml} "$dest/"
# The Gloo shim and libgloo with the libraries it needs beyond glibc and libstdc++: the GPU
# machine has none of them, and gpu.sh's group-of-one check uses Gloo for control.
mkdir -p "$dest/lib"
shim=$(ls -t target/release/build/gadms-*/out/libgadms_gloo.so 2>/dev/null | head -1)
if [[ -n $shim ]]; then
  cp "$shim" "$dest/lib/"
  ldd "$shim" | awk '/=> \// {print $3}' | grep -E 'libgloo|libhiredis|libibverbs|libnl-' |
    while read -r so; do cp -L "$so" "$dest/lib/"; done
else
  echo "package-gpu.sh: no Gloo shim was built (install libgloo-dev); gpu.sh's step 6 will fail" >&2
fi
chmod +x "$dest/gpu.sh"

tar -C "$(dirname "$dest")" -cJf "$dest.tar.xz" "$(basename "$dest")"
du -sh "$dest"/* | sed 's/^/  /'
size=$(stat -c %s "$dest.tar.xz")
echo "package: $dest ($(du -sh "$dest" | cut -f1)), archive $dest.tar.xz: $((size / 1048576)) MiB"
if ((size > limit_mib * 1048576)); then
  echo "package-gpu.sh: the archive is over $limit_mib MiB; a device call carries 64 MiB with the working tree" >&2
  exit 1
fi
