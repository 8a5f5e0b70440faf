// Range coder core; see rangecoder.hpp for the design and stream format.
#include "rangecoder.hpp"

#include <atomic>
#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <thread>

namespace codec_rc {
namespace {

constexpr uint64_t kTop = 1ull << 56;  // renormalise while range < kTop
constexpr int kLutBits = 10;           // decoder lookup: 1024 bins per table
constexpr int kLutShift = kPrecision - kLutBits;

std::string at(const char* name, int64_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

// ----------------------------------------------------------------------------------
// Encoder
// ----------------------------------------------------------------------------------
class Encoder {
 public:
  explicit Encoder(std::vector<uint8_t>& out) : out_(out) {
    out_.clear();
    out_.resize(1024);
  }

  // Make room for at least `n` more bytes.
  inline void reserve(size_t n) {
    if (pos_ + n > out_.size()) out_.resize((out_.size() + n) * 2);
  }

  inline void encode(uint32_t start, uint32_t freq) {
    const uint64_t r = range_ >> kPrecision;
    add_low(r * start);
    range_ = r * freq;
    renorm();
  }

  // Uniform model over [0, 2^nbits), nbits <= 16.
  inline void encode_bits(uint32_t value, int nbits) {
    const uint64_t r = range_ >> nbits;
    add_low(r * value);
    range_ = r;
    renorm();
  }

  // Shortest suffix that pins the final value inside [low, low + range).
  void flush() {
    using u128 = unsigned __int128;
    const u128 lo = low_;
    for (int nbytes = 0; nbytes <= 8; ++nbytes) {
      const int k = 64 - 8 * nbytes;
      const u128 mask = (u128(1) << k) - 1;
      const u128 x = (lo + mask) & ~mask;
      if (x - lo < u128(range_)) {
        if (x >> 64) carry();
        const uint64_t v = uint64_t(x);
        reserve(8);
        for (int b = 0; b < nbytes; ++b) out_[pos_++] = uint8_t(v >> (56 - 8 * b));
        out_.resize(pos_);
        return;
      }
    }
    // Unreachable: range >= 2^56 makes nbytes = 1 always succeed.
    out_.resize(pos_);
  }

 private:
  inline void add_low(uint64_t add) {
    const uint64_t nl = low_ + add;
    if (nl < low_) carry();
    low_ = nl;
  }

  void carry() {
    size_t i = pos_;
    while (i > 0 && out_[i - 1] == 0xFF) out_[--i] = 0;
    if (i > 0) out_[i - 1]++;
  }

  inline void renorm() {
    while (range_ < kTop) {
      out_[pos_++] = uint8_t(low_ >> 56);
      low_ <<= 8;
      range_ <<= 8;
    }
  }

  std::vector<uint8_t>& out_;
  size_t pos_ = 0;
  uint64_t low_ = 0;
  uint64_t range_ = ~0ull;
};

// ----------------------------------------------------------------------------------
// Decoder
// ----------------------------------------------------------------------------------
class Decoder {
 public:
  Decoder(const uint8_t* data, int64_t size) : data_(data), size_(size) {
    for (int i = 0; i < 8; ++i) code_ = (code_ << 8) | next();
  }

  // Cumulative-frequency target in [0, 2^16), or >= 2^16 for a corrupt stream.
  inline uint64_t target(uint64_t& r) const {
    r = range_ >> kPrecision;
    return code_ / r;
  }

  inline void consume(uint64_t r, uint32_t start, uint32_t freq) {
    code_ -= r * start;
    range_ = r * freq;
    renorm();
  }

  // Returns false for an impossible value (corrupt stream).
  inline bool decode_bits(int nbits, uint32_t& value) {
    const uint64_t r = range_ >> nbits;
    const uint64_t v = code_ / r;
    if (v >> nbits) return false;
    code_ -= r * v;
    range_ = r;
    renorm();
    value = uint32_t(v);
    return true;
  }

  inline bool overrun() const { return pos_ > size_ + kMaxOverreadBytes; }

 private:
  inline uint64_t next() {
    const uint64_t b = pos_ < size_ ? data_[pos_] : 0;
    ++pos_;
    return b;
  }

  inline void renorm() {
    while (range_ < kTop) {
      code_ = (code_ << 8) | next();
      range_ <<= 8;
    }
  }

  const uint8_t* data_;
  int64_t size_;
  int64_t pos_ = 0;
  uint64_t code_ = 0;
  uint64_t range_ = ~0ull;
};

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

std::string encode(const int32_t* symbols, const int32_t* indexes, int64_t n, const Tables& t, std::vector<uint8_t>& out) {
  Encoder enc(out);
  if (n == 0) {
    out.clear();
    return {};
  }
  enc.reserve(size_t(n) / 2 + 64);
  for (int64_t k = 0; k < n; ++k) {
    enc.reserve(32);
    const int32_t idx = indexes[k];
    if (uint64_t(uint32_t(idx)) >= uint64_t(t.n_tables)) return "indexes[" + std::to_string(k) + "] is out of range (changed during coding)";
    const int32_t* cdf = t.cdfs + int64_t(idx) * t.stride;
    const int64_t last = int64_t(t.lengths[idx]) - 2;  // escape symbol
    const int64_t s = int64_t(symbols[k]) - int64_t(t.offsets[idx]);
    if (s >= 0 && s < last) {
      const uint32_t lo = uint32_t(cdf[s]);
      enc.encode(lo, uint32_t(cdf[s + 1]) - lo);
      continue;
    }
    const uint32_t lo = uint32_t(cdf[last]);
    enc.encode(lo, kTotal - lo);
    const uint64_t raw = s < 0 ? uint64_t(-2 * s - 1) : uint64_t(2 * (s - last));
    int chunks = 0;
    while (chunks < kMaxBypassChunks && (raw >> (kBypassBits * chunks)) != 0) ++chunks;
    enc.encode_bits(uint32_t(chunks), kBypassBits);
    for (int j = 0; j < chunks; ++j) enc.encode_bits(uint32_t(raw >> (kBypassBits * j)) & 15u, kBypassBits);
  }
  enc.flush();
  return {};
}

namespace {

// Decoder lookup tables: lut(i)[b] = the symbol of table i whose interval contains
// b << kLutShift. Each table's is built on first use, so memory is proportional to the
// tables actually used; one object serves any number of decode calls with the same tables.
class LazyLut {
 public:
  static constexpr int64_t kBins = int64_t(1) << kLutBits;

  explicit LazyLut(const Tables& t) : t_(t), slot_(size_t(t.n_tables), -1) {}

  // REQUIRES: 0 <= idx < t.n_tables and table idx validated.
  const uint16_t* get(int32_t idx) {
    if (slot_[idx] < 0) {
      const int32_t* cdf = t_.cdfs + int64_t(idx) * t_.stride;
      slot_[idx] = n_built_++;
      lut_.resize(size_t(n_built_) * kBins);
      uint16_t* tl = lut_.data() + int64_t(slot_[idx]) * kBins;
      int64_t s = 0;
      for (int64_t b = 0; b < kBins; ++b) {
        const int32_t x = int32_t(b << kLutShift);
        while (cdf[s + 1] <= x) ++s;  // bounded: cdf[len-1] = 65536 > x
        tl[b] = uint16_t(s);
      }
    }
    return lut_.data() + int64_t(slot_[idx]) * kBins;
  }

 private:
  const Tables& t_;
  std::vector<uint16_t> lut_;
  std::vector<int32_t> slot_;
  int32_t n_built_ = 0;
};

std::string decode_with(LazyLut& luts, const uint8_t* data, int64_t size, const int32_t* indexes, int64_t n, const Tables& t,
                        int32_t* out) {
  if (n == 0) return {};
  Decoder dec(data, size);
  for (int64_t k = 0; k < n; ++k) {
    const int32_t idx = indexes[k];
    if (uint64_t(uint32_t(idx)) >= uint64_t(t.n_tables)) return "indexes[" + std::to_string(k) + "] is out of range (changed during coding)";
    const int32_t* cdf = t.cdfs + int64_t(idx) * t.stride;
    const int64_t last = int64_t(t.lengths[idx]) - 2;
    const uint16_t* tl = luts.get(idx);
    uint64_t r;
    const uint64_t v = dec.target(r);
    if (v >= kTotal) return "corrupt range-coded data: impossible code value at symbol " + std::to_string(k);
    int64_t s = tl[v >> kLutShift];
    const int32_t vi = int32_t(v);
    while (cdf[s + 1] <= vi) ++s;  // bounded: cdf[len-1] = 65536 > v
    const uint32_t lo = uint32_t(cdf[s]);
    dec.consume(r, lo, uint32_t(cdf[s + 1]) - lo);
    if (s < last) {
      out[k] = int32_t(s + int64_t(t.offsets[idx]));
    } else {
      uint32_t chunks;
      if (!dec.decode_bits(kBypassBits, chunks)) return "corrupt range-coded data: impossible bypass value at symbol " + std::to_string(k);
      if (chunks > uint32_t(kMaxBypassChunks)) return "corrupt range-coded data: escape with too many chunks at symbol " + std::to_string(k);
      uint64_t raw = 0;
      for (uint32_t j = 0; j < chunks; ++j) {
        uint32_t c;
        if (!dec.decode_bits(kBypassBits, c)) return "corrupt range-coded data: impossible bypass value at symbol " + std::to_string(k);
        raw |= uint64_t(c) << (kBypassBits * j);
      }
      // raw < 2^36, so these int64 computations cannot overflow.
      const int64_t sv = (raw & 1) ? -int64_t((raw + 1) >> 1) : int64_t(raw >> 1) + last;
      const int64_t value = sv + int64_t(t.offsets[idx]);
      if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
        return "corrupt range-coded data: escaped value out of int32 range at symbol " + std::to_string(k);
      }
      out[k] = int32_t(value);
    }
    if (dec.overrun()) return "truncated range-coded data: stream ended before symbol " + std::to_string(k) + " of " + std::to_string(n);
  }
  return {};
}

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

std::string decode(const uint8_t* data, int64_t size, const int32_t* indexes, int64_t n, const Tables& t, int32_t* out) {
  if (n == 0) return {};
  LazyLut luts(t);
  return decode_with(luts, data, size, indexes, n, t, out);
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
                              const Tables& t, int64_t threads, std::vector<std::vector<uint8_t>>& out) {
  std::string err = validate_bounds(bounds, n_bounds, n);
  if (err.empty()) err = validate_threads(threads);
  if (!err.empty()) return err;
  const int64_t n_sub = n_bounds - 1;
  out.assign(size_t(n_sub), {});
  return parallel_for(
      n_sub, threads, [] { return 0; },
      [&](int64_t j, int&) -> std::string {
        const int64_t a = bounds[j];
        std::string e = encode(symbols + a, indexes + a, bounds[j + 1] - a, t, out[size_t(j)]);
        return e.empty() ? e : slice_name(bounds, j) + ": " + e;
      });
}

std::string decode_substreams(const uint8_t* const* data, const int64_t* sizes, const int32_t* indexes, int64_t n,
                              const int64_t* bounds, int64_t n_bounds, const Tables& t, int64_t threads, int32_t* out) {
  std::string err = validate_bounds(bounds, n_bounds, n);
  if (err.empty()) err = validate_threads(threads);
  if (!err.empty()) return err;
  const int64_t n_sub = n_bounds - 1;
  for (int64_t j = 0; j < n_sub; ++j) {
    if (sizes[j] < 0) return at("sizes", j) + " = " + std::to_string(sizes[j]) + " is negative";
  }
  return parallel_for(
      n_sub, threads, [&] { return LazyLut(t); },
      [&](int64_t j, LazyLut& luts) -> std::string {
        const int64_t a = bounds[j];
        std::string e = decode_with(luts, data[j], sizes[j], indexes + a, bounds[j + 1] - a, t, out + a);
        return e.empty() ? e : slice_name(bounds, j) + ": " + e;
      });
}

}  // namespace codec_rc
