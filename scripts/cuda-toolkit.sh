#!/usr/bin/env bash
# Assemble the part of a CUDA toolkit that `cargo build --features cuda` needs (nvcc, the headers,
# cuBLAS, cuRAND, NVRTC and the runtime) from NVIDIA's wheels on PyPI, without root, a GPU or
# NVIDIA's apt repository. Use it to build for a GPU machine whose CUDA differs from what the
# build machine's distribution ships (README, "CUDA").
#
#   scripts/cuda-toolkit.sh DIR [VERSION]      VERSION: the GPU machine's CUDA, 13.0 unless given
#   source DIR/env.sh
#   cargo build --release --features cuda -p hakaru-cli
#
# env.sh sets CUDA_HOME and PATH, and CUDA_COMPUTE_CAP=90 (H100/H200) unless it is set already.
#
# candle links the CUDA driver library (libcuda.so.1) at build time, and that library comes with
# the GPU driver, not with the toolkit or any wheel. So the script builds a link-time stand-in:
# a shared object named libcuda.so.1 that defines every function cuda.h declares (each returns an
# error code). The binary records only the name; on the GPU machine the driver's own libcuda.so.1
# is the one loaded. Nothing here is ever run.
set -euo pipefail
dir=${1:?give the directory to assemble the toolkit in}
version=${2:-13.0}
major=${version%%.*}
case $major in
  13) ;;
  *) echo "CUDA $version: only 13.x wheels have the layout this script expects (nvidia/cu13)" >&2; exit 2 ;;
esac
# The wheels' versions for 13.0, as hakaru's CUDA build was made with; for another 13.x, the
# newest wheels of that minor version (their numbers do not all follow CUDA's: cuBLAS 13.0 is
# 13.0.x.y, cuRAND 10.4.x.y).
case $version in
  13.0) pins=("nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-nvvm==13.0.88"
    "nvidia-cuda-runtime==13.0.96" "nvidia-cuda-cccl==13.0.85" "nvidia-cuda-nvrtc==13.0.88"
    "nvidia-cublas==13.0.2.14" "nvidia-curand==10.4.5.25") ;;
  *) echo "CUDA $version: not tried with hakaru; taking the newest $version wheels" >&2
    pins=("nvidia-cuda-nvcc==$version.*" "nvidia-cuda-crt==$version.*" "nvidia-nvvm==$version.*"
      "nvidia-cuda-runtime==$version.*" "nvidia-cuda-cccl==$version.*"
      "nvidia-cuda-nvrtc==$version.*" "nvidia-cublas==$version.*" "nvidia-curand>=10.4,<11") ;;
esac
rm -rf "$dir/wheels" "$dir/unpacked"
mkdir -p "$dir/wheels" "$dir/unpacked"
dir=$(cd "$dir" && pwd)
python3 -m pip download --quiet --no-deps --dest "$dir/wheels" "${pins[@]}"
for w in "$dir"/wheels/*.whl; do
  python3 -m zipfile -e "$w" "$dir/unpacked/"
done
home=$dir/unpacked/nvidia/cu$major
# Wheels do not keep file modes.
chmod +x "$home"/bin/* "$home"/nvvm/bin/*
# The linker looks for the unversioned names.
(
  cd "$home/lib"
  for so in lib*.so.*; do
    base=${so%%.so.*}.so
    [ -e "$base" ] || ln -s "$so" "$base"
  done
)
# The link-time stand-in for libcuda.so.1 (see above), from this toolkit's own cuda.h: every
# `cuName(` left after the preprocessor (which maps cuFoo to cuFoo_v2 where the header does).
mkdir -p "$home/lib/stubs"
gcc -E -P -I"$home/include" "$home/include/cuda.h" |
  grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u |
  sed 's/.*/int &(void) { return 999; }/' >"$dir/libcuda-stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$dir/libcuda-stub.c"
{
  printf 'export CUDA_HOME=%q\n' "$home"
  printf 'export PATH=%q:"$PATH"\n' "$home/bin"
  printf 'export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}\n'
} >"$dir/env.sh"
"$home/bin/nvcc" --version | tail -n 2
echo "$(wc -l <"$dir/libcuda-stub.c") driver functions in the link-time libcuda.so.1"
echo "now: source $dir/env.sh"
