#!/usr/bin/env bash
# Build codec._cuda_rangecoder here for another Python (the GPU machine's 3.12, which may have
# no nvcc), into OUT/codec/, to carry there and copy into codec/ if it cannot build its own.
# Self-contained: CUDA runtime, libstdc++ and libgcc linked statically (needs only libc).
#
# Usage: tools/build_cuda_carry.sh [PYTHON_INCLUDE_DIR] [OUT]
#   defaults: /root/.pyenv/versions/3.12.1/include/python3.12, gpu-carry/cuda-cp312
set -euo pipefail
cd "$(dirname "$0")/.."
PYINC="${1:-/root/.pyenv/versions/3.12.1/include/python3.12}"
OUT="${2:-gpu-carry/cuda-cp312}"
CUDA="${CUDA_HOME:-/usr/local/cuda}"
TAG="cpython-$(basename "$PYINC" | tr -d 'python.')"  # python3.12 -> cpython-312
PB="$(python -c 'import pybind11; print(pybind11.get_include())')"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT/codec"
"$CUDA/bin/nvcc" -std=c++17 -O3 -Xcompiler -fPIC -gencode=arch=compute_90,code=sm_90 \
  -gencode=arch=compute_90,code=compute_90 -Icsrc -c csrc/cuda/kernels.cu -o "$TMP/kernels.o"
SOURCES=$(grep -L pybind11 csrc/*.cpp)
g++ -O2 -std=c++17 -fPIC -shared -fvisibility=hidden -DCODEC_CUDA_ARCH='"sm_90"' -Icsrc -I"$CUDA/include" -I"$PB" -I"$PYINC" \
  csrc/cuda/bindings_cuda.cpp $SOURCES "$TMP/kernels.o" -L"$CUDA/lib64" -lcudart_static -lrt -ldl -lpthread \
  -Wl,--exclude-libs,ALL -static-libstdc++ -static-libgcc -o "$OUT/codec/_cuda_rangecoder.$TAG-x86_64-linux-gnu.so"
ls -la "$OUT/codec"
