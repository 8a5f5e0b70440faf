// Range coder: validation, lookup tables, messages and threads around the arithmetic of
// cuda/coder_core.hpp (shared with the CUDA coder); see rangecoder.hpp for the design and
// stream format.
#include "rangecoder.hpp"

#include "tables.hpp"

#include <atomic>
#include <algorithm>
#include <mutex>
#include <new>
#include <thread>

namespace codec_rc {
namespace {

constexpr int kLutShift = kPrecision - TableSet::kLutBits;

std::string at(const char* name, int64_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

// The CPU coder's message for a fault of the core (csrc/cuda/coder_core.hpp) at value k of n.
std::string fault_message(const core::Result& r, int64_t n) {
  const std::string k = std::to_string(r.at);
  switch (r.status) {
    case core::kBadIndex: return "indexes[" + k + "] is out of range (changed during coding)";
    case core::kCorruptCode: return "corrupt range-coded data: impossible code value at symbol " + k;
    case core::kCorruptBypass: return "corrupt range-coded data: impossible bypass value at symbol " + k;
    case core::kTooManyChunks: return "corrupt range-coded data: escape with too many chunks at symbol " + k;
    case core::kEscapeOutOfRange: return "corrupt range-coded data: escaped value out of int32 range at symbol " + k;
    case core::kTruncated: return "truncated range-coded data: stream ended before symbol " + k + " of " + std::to_string(n);
    default: return std::string("internal error in the range coder: ") + core::status_name(r.status) + " at symbol " + k;
  }
}

}  // namespace

std::string validate_tables(const Tables& t) {
  for (int64_t i = 0; i < t.n_tables; ++i) {
    const int64_t len = t.lengths[i];
    if (len < 2 || len > t.stride) {
      return at("cdf_lengths", i) + " = " + std::to_string(len) + " is invalid: a CDF length must be in [2, cdfs.shape[1] = " +
             std::to_string(t.stride) + "]";
    }
    const int32_t* cdf = t.cdfs + i * t.stride;
    if (cdf[0] != 0) return at("cdfs", i) + "[0] = " + std::to_string(cdf[0]) + ", a quantized CDF must start at 0";
    if (cdf[len - 1] != int32_t(kTotal)) {
      return at("cdfs", i) + "[cdf_lengths[" + std::to_string(i) + "] - 1] = " + std::to_string(cdf[len - 1]) +
             ", a quantized CDF must end at 65536 (16-bit precision)";
    }
    for (int64_t k = 1; k < len; ++k) {
      if (cdf[k] <= cdf[k - 1]) {
        return at("cdfs", i) + " is not strictly increasing at entry " + std::to_string(k) + " (" + std::to_string(cdf[k - 1]) +
               " -> " + std::to_string(cdf[k]) + "): symbol " + std::to_string(k - 1) + " has zero frequency";
      }
    }
  }
  return {};
}

std::string validate_indexes(const int32_t* indexes, int64_t n, int64_t n_tables) {
  for (int64_t k = 0; k < n; ++k) {
    if (indexes[k] < 0 || indexes[k] >= n_tables) {
      return at("indexes", k) + " = " + std::to_string(indexes[k]) + " is out of range: there are " + std::to_string(n_tables) +
             " tables";
    }
  }
  return {};
}

namespace {

// The message of a call on n values that failed with `fault`: the first out-of-range index
// if there is one (so a bad index is what is reported, whatever fault the coding met first,
// as if the indexes had been checked before coding), else `fault`. Only failed calls pay
// for this pass: the core checks each index as it reads it, so a bad index always fails.
std::string index_error_or(std::string fault, const int32_t* indexes, int64_t n, int64_t n_tables) {
  std::string e = validate_indexes(indexes, n, n_tables);
  return e.empty() ? fault : e;
}

// Encodes n >= 1 values into buf[0 .. bytes), buf grown as needed (never shrunk or cleared,
// so a buffer reused for several streams is allocated and zero-filled once). Blocks of
// values, buf grown before each so that the core cannot run out of room.
std::string encode_into(const int32_t* symbols, const int32_t* indexes, int64_t n, const Tables& t, std::vector<uint8_t>& buf,
                        int64_t& bytes) {
  constexpr int64_t kBlock = 4096;
  core::EncoderState e;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t end = std::min(n, begin + kBlock);
    const int64_t need = e.pos + (end - begin) * core::kMaxBytesPerValue + core::kMaxFlushBytes;
    if (int64_t(buf.size()) < need) buf.resize(size_t(std::max(need, int64_t(buf.size()) * 2)));
    const core::Result r = core::encode_values<true>(e, symbols, indexes, begin, end, t, buf.data(), int64_t(buf.size()));
    if (r.status != core::kOk) return fault_message(r, n);
  }
  const core::Result r = core::finish<true>(e, buf.data(), int64_t(buf.size()));
  if (r.status != core::kOk) return fault_message(r, n);
  bytes = e.pos;
  return {};
}

}  // namespace

std::string encode(const int32_t* symbols, const int32_t* indexes, int64_t n, const TableSet& ts, std::vector<uint8_t>& out) {
  out.clear();
  if (n == 0) return {};
  int64_t bytes = 0;
  const std::string err = encode_into(symbols, indexes, n, ts.tables(), out, bytes);
  if (!err.empty()) {
    out.clear();
    return index_error_or(err, indexes, n, ts.size());
  }
  out.resize(size_t(bytes));
  return {};
}

namespace {

// The core's symbol search by the table set's lookup tables (BinarySearch on the GPU; same
// symbols). Without a lookup table (out of memory) the core scans from symbol 0: slower,
// same result.
struct LutSearch {
  const TableSet& ts;
  int64_t operator()(int32_t idx, const int32_t*, int64_t, uint32_t v) const {
    const uint16_t* lut = ts.lut(idx);  // idx checked by the core
    return lut != nullptr ? lut[v >> kLutShift] : 0;
  }
};

// Runs job(j, state) for j = 0 .. n_jobs-1 on `threads` threads (the caller's included),
// each with its own State built by make_state(). Jobs are taken in order from a counter;
// after a failure no job above the lowest failed one is started, and the error returned
// is the lowest failed job's, so it does not depend on timing. A thread that cannot be
// started leaves its share to the others; exceptions (out of memory) become errors.
template <class MakeState, class Job>
std::string parallel_for(int64_t n_jobs, int64_t threads, MakeState make_state, Job job) {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> failed{n_jobs};  // lowest failed job so far
  std::mutex mutex;
  std::string error;
  auto fail = [&](int64_t j, std::string message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (j < failed.load() || error.empty()) {
      failed.store(j);
      error = "substream " + std::to_string(j) + ": " + message;
    }
  };
  auto worker = [&]() {
    int64_t j = -1;
    try {
      auto state = make_state();
      for (;;) {
        j = next.fetch_add(1);
        if (j >= n_jobs || j > failed.load()) return;
        std::string e = job(j, state);
        if (!e.empty()) fail(j, std::move(e));
      }
    } catch (const std::bad_alloc&) {
      fail(j < 0 ? 0 : j, "out of memory");
    } catch (...) {
      fail(j < 0 ? 0 : j, "internal error in the range coder");
    }
  };
  std::vector<std::thread> pool;
  const int64_t extra = std::min(threads, n_jobs) - 1;
  try {
    pool.reserve(size_t(std::max<int64_t>(extra, 0)));
    for (int64_t i = 0; i < extra; ++i) pool.emplace_back(worker);
  } catch (...) {
    // No more threads (std::system_error / bad_alloc): the ones running do the work.
  }
  worker();
  for (auto& th : pool) th.join();
  return error;
}

std::string slice_name(const int64_t* bounds, int64_t j) {
  return "elements " + std::to_string(bounds[j]) + ".." + std::to_string(bounds[j + 1]);
}

}  // namespace

std::string decode(const uint8_t* data, int64_t size, const int32_t* indexes, int64_t n, const TableSet& t, int32_t* out) {
  const core::Result r = core::decode_stream(data, size, indexes, n, t.tables(), out, LutSearch{t});
  return r.status == core::kOk ? std::string() : index_error_or(fault_message(r, n), indexes, n, t.size());
}

std::string validate_bounds(const int64_t* bounds, int64_t n_bounds, int64_t n) {
  if (n_bounds < 2) return "bounds must have at least 2 entries (0 and the number of values), got " + std::to_string(n_bounds);
  if (bounds[0] != 0) return "bounds[0] = " + std::to_string(bounds[0]) + ", the first substream must start at 0";
  for (int64_t k = 0; k + 1 < n_bounds; ++k) {
    if (bounds[k + 1] < bounds[k]) {
      return at("bounds", k + 1) + " = " + std::to_string(bounds[k + 1]) + " < " + at("bounds", k) + " = " +
             std::to_string(bounds[k]) + ": bounds must be non-decreasing";
    }
  }
  if (bounds[n_bounds - 1] != n) {
    return at("bounds", n_bounds - 1) + " = " + std::to_string(bounds[n_bounds - 1]) + ", the last bound must be the number of values, " +
           std::to_string(n);
  }
  return {};
}

std::string validate_threads(int64_t threads) {
  if (threads < 1 || threads > kMaxThreads) {
    return "threads = " + std::to_string(threads) + " is invalid: it must be in [1, " + std::to_string(kMaxThreads) + "]";
  }
  return {};
}

std::string encode_substreams(const int32_t* symbols, const int32_t* indexes, int64_t n, const int64_t* bounds, int64_t n_bounds,
                              const TableSet& t, int64_t threads, std::vector<std::vector<uint8_t>>& out) {
  std::string err = validate_bounds(bounds, n_bounds, n);
  if (err.empty()) err = validate_threads(threads);
  if (!err.empty()) return err;
  const int64_t n_sub = n_bounds - 1;
  out.assign(size_t(n_sub), {});
  // Each thread encodes into its own scratch buffer, reused for all its substreams, and
  // copies the exact bytes out.
  err = parallel_for(
      n_sub, threads, [] { return std::vector<uint8_t>(); },
      [&](int64_t j, std::vector<uint8_t>& scratch) -> std::string {
        const int64_t a = bounds[j], m = bounds[j + 1] - a;
        if (m == 0) return {};
        int64_t bytes = 0;
        const std::string e = encode_into(symbols + a, indexes + a, m, t.tables(), scratch, bytes);
        if (!e.empty()) return slice_name(bounds, j) + ": " + e;
        out[size_t(j)].assign(scratch.data(), scratch.data() + bytes);
        return {};
      });
  if (err.empty()) return err;
  out.clear();
  return index_error_or(err, indexes, n, t.size());
}

std::string decode_substreams(const uint8_t* const* data, const int64_t* sizes, const int32_t* indexes, int64_t n,
                              const int64_t* bounds, int64_t n_bounds, const TableSet& t, int64_t threads, int32_t* out) {
  std::string err = validate_bounds(bounds, n_bounds, n);
  if (err.empty()) err = validate_threads(threads);
  if (!err.empty()) return err;
  const int64_t n_sub = n_bounds - 1;
  for (int64_t j = 0; j < n_sub; ++j) {
    if (sizes[j] < 0) return at("sizes", j) + " = " + std::to_string(sizes[j]) + " is negative";
  }
  err = parallel_for(
      n_sub, threads, [] { return 0; },
      [&](int64_t j, int&) -> std::string {
        const int64_t a = bounds[j];
        std::string e = decode(data[j], sizes[j], indexes + a, bounds[j + 1] - a, t, out + a);
        return e.empty() ? e : slice_name(bounds, j) + ": " + e;
      });
  return err.empty() ? err : index_error_or(err, indexes, n, t.size());
}

}  // namespace codec_rc
