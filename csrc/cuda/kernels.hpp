// Host-side launchers of the CUDA coder's kernels (csrc/cuda/kernels.cu), one GPU thread
// per substream over the shared core (coder_core.hpp). Plain C++ declarations, so that the
// pybind11 binding (bindings_cuda.cpp) is compiled by the host compiler alone.
//
// All pointers are device pointers; bounds (n_sub + 1 entries) must have been checked by
// codec_rc::validate_bounds and the tables by codec_rc::validate_tables (on a host copy,
// which is what the device reads). results[j] receives substream j's core::Result.
// Each launcher enqueues one kernel on the legacy default stream and returns
// cudaGetLastError() (0 = launched); the caller synchronises.
#pragma once

#include <stdint.h>

#include "coder_core.hpp"

namespace codec_cuda {

using codec_rc::core::Result;
using codec_rc::core::Tables;

// Pass 1: results[j].bytes = the exact length of substream j.
int launch_count(const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, int64_t n_sub, const Tables& t,
                 Result* results);

// Pass 2: substream j into out + starts[j] (sizes[j] bytes of room, from pass 1).
int launch_write(const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, int64_t n_sub, const Tables& t, uint8_t* out,
                 const int64_t* starts, const int64_t* sizes, Result* results);

// Substream j from data + starts[j] (sizes[j] bytes) into out[bounds[j] .. bounds[j+1]).
int launch_decode(const uint8_t* data, const int64_t* starts, const int64_t* sizes, const int32_t* indexes, const int64_t* bounds,
                  int64_t n_sub, const Tables& t, int32_t* out, Result* results);

}  // namespace codec_cuda
