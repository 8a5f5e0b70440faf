// CUDA kernels of the range coder: one thread per substream, each running the shared core
// (coder_core.hpp) on its slice; see kernels.hpp for the contract and docs/rangecoder.md
// ("CUDA coder") for the design.
#include <cuda_runtime.h>

#include "kernels.hpp"

namespace codec_cuda {
namespace {

constexpr int kThreads = 32;  // one warp per block: few substreams, spread over the SMs

__global__ void count_kernel(const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, int64_t n_sub, Tables t,
                             Result* results) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < n_sub) results[j] = codec_rc::core::count_substream(j, symbols, indexes, bounds, t);
}

__global__ void write_kernel(const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, int64_t n_sub, Tables t,
                             uint8_t* out, const int64_t* starts, const int64_t* sizes, Result* results) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < n_sub) results[j] = codec_rc::core::write_substream(j, symbols, indexes, bounds, t, out, starts, sizes);
}

__global__ void decode_kernel(const uint8_t* data, const int64_t* starts, const int64_t* sizes, const int32_t* indexes,
                              const int64_t* bounds, int64_t n_sub, Tables t, int32_t* out, Result* results) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < n_sub) results[j] = codec_rc::core::decode_substream(j, data, starts, sizes, indexes, bounds, t, out);
}

unsigned blocks(int64_t n_sub) { return unsigned((n_sub + kThreads - 1) / kThreads); }

}  // namespace

int launch_count(const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, int64_t n_sub, const Tables& t,
                 Result* results) {
  if (n_sub <= 0) return 0;
  count_kernel<<<blocks(n_sub), kThreads>>>(symbols, indexes, bounds, n_sub, t, results);
  return int(cudaGetLastError());
}

int launch_write(const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, int64_t n_sub, const Tables& t, uint8_t* out,
                 const int64_t* starts, const int64_t* sizes, Result* results) {
  if (n_sub <= 0) return 0;
  write_kernel<<<blocks(n_sub), kThreads>>>(symbols, indexes, bounds, n_sub, t, out, starts, sizes, results);
  return int(cudaGetLastError());
}

int launch_decode(const uint8_t* data, const int64_t* starts, const int64_t* sizes, const int32_t* indexes, const int64_t* bounds,
                  int64_t n_sub, const Tables& t, int32_t* out, Result* results) {
  if (n_sub <= 0) return 0;
  decode_kernel<<<blocks(n_sub), kThreads>>>(data, starts, sizes, indexes, bounds, n_sub, t, out, results);
  return int(cudaGetLastError());
}

}  // namespace codec_cuda
