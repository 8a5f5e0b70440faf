// The range coder's arithmetic, once, for the CPU coder (csrc/rangecoder.cpp) and the CUDA
// kernels (csrc/cuda/kernels.cu): encode or decode one stream (= one substream) on raw
// pointers. The stream format and the design are those of csrc/rangecoder.hpp and
// docs/rangecoder.md; this file is their only implementation.
//
// Every function is `__host__ __device__` under nvcc and plain `inline` C++17 otherwise
// (CODEC_HD). No allocation, no exceptions, no standard containers, no recursion: a fault
// is returned as a Status with the position (symbol number) where it happened, and every
// read and write is checked against the lengths given:
//   * output: at most `capacity` bytes are written (kOutputFull otherwise);
//   * input bytes: only data[0 .. size) is read; bytes past the end read as 0 and a
//     stream needing more than kMaxOverreadBytes of them is kTruncated;
//   * tables: indexes[k] must be in [0, n_tables) (kBadIndex) and cdf_lengths[idx] in
//     [2, stride] (kBadCdfLength); every CDF entry that is used is checked to lie in
//     [0, 65536] and to give a non-empty interval (kBadTable), so even an unvalidated
//     table can make the output wrong but never makes an access out of bounds, a zero
//     range or a division by zero.
// REQUIRES (of every caller): symbols/indexes readable for the n values given, cdfs
// readable for n_tables * stride entries, cdf_lengths and offsets for n_tables, data for
// size bytes, out writable for capacity bytes (encode) or n values (decode).
// Tables should be validated once beforehand (codec_rc::validate_tables) for the output
// to be decodable; the per-symbol checks here are the memory-safety net, not validation.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define CODEC_HD __host__ __device__ __forceinline__
#define CODEC_HD_COLD __host__ __device__ __noinline__
#else
#define CODEC_HD inline
#define CODEC_HD_COLD __attribute__((noinline, cold))
#endif

namespace codec_rc {
namespace core {

constexpr int kPrecision = 16;
constexpr uint32_t kTotal = 1u << kPrecision;  // 65536
constexpr int kBypassBits = 4;
constexpr int kMaxBypassChunks = 9;   // raw < 2^34 <= 2^(4*9)
constexpr int kMaxOverreadBytes = 8;  // a valid stream reads at most 8 zero bytes past its end
constexpr uint64_t kTop = 1ull << 56;  // renormalise while range < kTop
// Most bytes one value can add to a stream: the symbol (2, since range >= r >= 2^40
// after it) plus, for an escape, 1 + 9 bypass chunks of at most one byte each (range >=
// 2^52 after a chunk). A flush adds at most 1 byte.
constexpr int64_t kMaxBytesPerValue = 12;
constexpr int64_t kMaxFlushBytes = 1;

enum Status : int32_t {
  kOk = 0,
  kOutputFull = 1,        // encoder: `capacity` bytes were not enough
  kBadIndex = 2,          // indexes[k] outside [0, n_tables)
  kBadCdfLength = 3,      // cdf_lengths[indexes[k]] outside [2, stride]
  kBadTable = 4,          // a CDF entry used is outside [0, 65536] or gives an empty interval
  kCorruptCode = 5,       // decoder: impossible code value (v >= 2^16)
  kCorruptBypass = 6,     // decoder: impossible bypass chunk
  kTooManyChunks = 7,     // decoder: an escape announces more than 9 chunks
  kEscapeOutOfRange = 8,  // decoder: an escaped value outside int32
  kTruncated = 9,         // decoder: more than kMaxOverreadBytes read past the end
  kBadArgument = 10,      // a negative count, size or capacity, or a null pointer with a length
};

// Short name of a status, for messages.
CODEC_HD const char* status_name(int32_t s) {
  switch (s) {
    case kOk: return "ok";
    case kOutputFull: return "output buffer full";
    case kBadIndex: return "table index out of range";
    case kBadCdfLength: return "bad cdf length";
    case kBadTable: return "bad table";
    case kCorruptCode: return "corrupt range-coded data: impossible code value";
    case kCorruptBypass: return "corrupt range-coded data: impossible bypass value";
    case kTooManyChunks: return "corrupt range-coded data: escape with too many chunks";
    case kEscapeOutOfRange: return "corrupt range-coded data: escaped value out of int32 range";
    case kTruncated: return "truncated range-coded data";
    case kBadArgument: return "bad argument";
    default: return "unknown status";
  }
}

struct Tables {
  const int32_t* cdfs = nullptr;     // n_tables x stride, row-major
  int64_t n_tables = 0;
  int64_t stride = 0;                // cdfs.shape[1]
  const int32_t* lengths = nullptr;  // n_tables
  const int32_t* offsets = nullptr;  // n_tables
};

// status: a Status; at: the value (symbol number, from the start of the stream) where it
// happened, -1 when not tied to one; bytes: bytes of the stream written (encode).
struct Result {
  int32_t status = kOk;
  int64_t at = -1;
  int64_t bytes = 0;
};

CODEC_HD Result make_result(int32_t status, int64_t at, int64_t bytes = 0) {
  Result r;
  r.status = status;
  r.at = at;
  r.bytes = bytes;
  return r;
}

// Checks indexes[k]'s table length; on success sets cdf and last (= the escape symbol).
CODEC_HD int32_t table_of(const Tables& t, int32_t idx, const int32_t*& cdf, int64_t& last) {
  if (uint64_t(uint32_t(idx)) >= uint64_t(t.n_tables)) return kBadIndex;
  const int64_t len = t.lengths[idx];
  if (uint64_t(len - 2) > uint64_t(t.stride - 2)) return kBadCdfLength;  // len outside [2, stride]
  cdf = t.cdfs + int64_t(idx) * t.stride;
  last = len - 2;
  return kOk;
}

// ----------------------------------------------------------------------------------
// Encoder
// ----------------------------------------------------------------------------------
// State of an encoder between calls of encode_values (so a caller may grow its buffer
// between blocks of values). pos = bytes written so far.
struct EncoderState {
  uint64_t low = 0;
  uint64_t range = ~0ull;
  int64_t pos = 0;
};

// Adds 1 to the bytes written: trailing 0xFF become 0x00, the first other byte is
// incremented (never runs past the first byte: the coded value stays below 1).
// Out of line: rare, and keeps the coding loop small.
template <bool kWrite>
CODEC_HD_COLD void carry(uint8_t* out, int64_t pos) {
  if (!kWrite) return;  // counting only: a carry changes bytes, never their number
  int64_t i = pos;
  while (i > 0 && out[i - 1] == 0xFF) out[--i] = 0;
  if (i > 0) out[i - 1]++;
}

// Codes values [begin, end) of symbols/indexes, continuing `e`. kWrite = false only counts
// the bytes (out may be null): the count is exact, since carries never change it.
// On a fault, `e` is left where the fault happened and Result.at is the value's number.
template <bool kWrite>
CODEC_HD Result encode_values(EncoderState& e, const int32_t* symbols, const int32_t* indexes, int64_t begin, int64_t end,
                              const Tables& tables, uint8_t* out, int64_t capacity) {
  const Tables t = tables;  // a local copy: the byte stores below cannot alias it
  uint64_t low = e.low, range = e.range;
  int64_t pos = e.pos;
  int32_t status = kOk;
  int64_t k = begin;
  // One interval [start, start + freq) of 2^shift: low += r * start, range = r * freq, renormalise.
#define CODEC_RC_PUT(start, freq, shift)                      \
  {                                                           \
    const uint64_t r_ = range >> (shift);                     \
    const uint64_t nl_ = low + r_ * (start);                  \
    if (nl_ < low) carry<kWrite>(out, pos);                   \
    low = nl_;                                                \
    range = r_ * (freq);                                      \
    while (range < kTop) {                                    \
      if (pos >= capacity) {                                  \
        status = kOutputFull;                                 \
        break;                                                \
      }                                                       \
      if (kWrite) out[pos] = uint8_t(low >> 56);              \
      ++pos;                                                  \
      low <<= 8;                                              \
      range <<= 8;                                            \
    }                                                         \
  }
  for (; k < end; ++k) {
    const int32_t idx = indexes[k];
    const int32_t* cdf;
    int64_t last;
    status = table_of(t, idx, cdf, last);
    if (status != kOk) break;
    const int64_t s = int64_t(symbols[k]) - int64_t(t.offsets[idx]);
    if (s >= 0 && s < last) {
      const uint32_t lo = uint32_t(cdf[s]), hi = uint32_t(cdf[s + 1]);
      if (lo >= hi || hi > kTotal) {  // as unsigned: also catches negative entries
        status = kBadTable;
        break;
      }
      CODEC_RC_PUT(lo, hi - lo, kPrecision)
      if (status != kOk) break;
      continue;
    }
    const uint32_t lo = uint32_t(cdf[last]), hi = uint32_t(cdf[last + 1]);  // the escape symbol
    if (lo >= hi || hi > kTotal) {
      status = kBadTable;
      break;
    }
    CODEC_RC_PUT(lo, hi - lo, kPrecision)
    if (status != kOk) break;
    const uint64_t raw = s < 0 ? uint64_t(-2 * s - 1) : uint64_t(2 * (s - last));
    int chunks = 0;
    while (chunks < kMaxBypassChunks && (raw >> (kBypassBits * chunks)) != 0) ++chunks;
    CODEC_RC_PUT(uint32_t(chunks), 1u, kBypassBits)
    for (int j = 0; j < chunks && status == kOk; ++j) {
      CODEC_RC_PUT(uint32_t(raw >> (kBypassBits * j)) & 15u, 1u, kBypassBits)
    }
    if (status != kOk) break;
  }
#undef CODEC_RC_PUT
  e.low = low;
  e.range = range;
  e.pos = pos;
  return make_result(status, status == kOk ? -1 : k, pos);
}

// Ends the stream: the shortest byte string (0 to 8 bytes; at most 1 since range >= 2^56)
// which, followed by zero bytes, lies in [low, low + range).
template <bool kWrite>
CODEC_HD Result finish(EncoderState& e, uint8_t* out, int64_t capacity) {
  const uint64_t lo = e.low;
  for (int nbytes = 0; nbytes <= 8; ++nbytes) {
    // x = lo rounded up to a multiple of 2^(64 - 8 nbytes), as 64 bits plus a carry bit.
    uint64_t x, diff;
    bool over;
    if (nbytes == 0) {
      over = lo != 0;
      x = 0;
      diff = 0 - lo;  // 2^64 - lo, or 0
    } else {
      const uint64_t mask = (nbytes == 8) ? 0 : (~0ull >> (8 * nbytes));
      const uint64_t sum = lo + mask;
      over = sum < lo;
      x = sum & ~mask;
      diff = x - lo;  // the true difference is <= mask < 2^64: exact modulo 2^64
    }
    if (diff < e.range) {
      if (e.pos + nbytes > capacity) return make_result(kOutputFull, -1, e.pos);
      if (over) carry<kWrite>(out, e.pos);
      for (int b = 0; b < nbytes; ++b) {
        if (kWrite) out[e.pos] = uint8_t(x >> (56 - 8 * b));
        ++e.pos;
      }
      e.low = 0;
      e.range = ~0ull;
      return make_result(kOk, -1, e.pos);
    }
  }
  return make_result(kOk, -1, e.pos);  // unreachable: nbytes = 1 always fits (range >= 2^56)
}

// One whole stream: values [0, n) then the flush, into out[0 .. capacity). n == 0 writes
// nothing (the empty stream). Result.bytes = the stream's length.
template <bool kWrite>
CODEC_HD Result encode_stream(const int32_t* symbols, const int32_t* indexes, int64_t n, const Tables& t, uint8_t* out,
                              int64_t capacity) {
  if (n < 0 || capacity < 0 || (kWrite && out == nullptr && capacity > 0)) return make_result(kBadArgument, -1);
  if (n == 0) return make_result(kOk, -1, 0);
  EncoderState e;
  Result r = encode_values<kWrite>(e, symbols, indexes, 0, n, t, out, capacity);
  if (r.status != kOk) return r;
  return finish<kWrite>(e, out, capacity);
}

// ----------------------------------------------------------------------------------
// Decoder
// ----------------------------------------------------------------------------------
// The symbol search: first symbol of a table's CDF to scan from for target v. Any
// answer in [0, last] with cdf[answer] <= v gives the same decoded symbol (the decoder
// scans forward from it); the CPU uses a lookup table (csrc/rangecoder.cpp), the GPU this
// binary search.
struct BinarySearch {
  CODEC_HD int64_t operator()(int32_t /*idx*/, const int32_t* cdf, int64_t last, uint32_t v) const {
    int64_t lo = 0, hi = last + 1;  // invariant for a valid table: cdf[lo] <= v < cdf[hi]
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (uint32_t(cdf[mid]) <= v && cdf[mid] >= 0) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
};

// Decodes n values from data[0 .. size) into out[0 .. n). Search: as BinarySearch.
template <class Search>
CODEC_HD Result decode_stream(const uint8_t* data, int64_t size, const int32_t* indexes, int64_t n, const Tables& tables, int32_t* out,
                              const Search& search) {
  const Tables t = tables;  // a local copy: the stores below cannot alias it
  if (n < 0 || size < 0 || (data == nullptr && size > 0)) return make_result(kBadArgument, -1);
  if (n == 0) return make_result(kOk, -1);
  int64_t pos = 0;
  uint64_t code = 0, range = ~0ull;
#define CODEC_RC_NEXT() (pos < size ? uint64_t(data[pos++]) : (++pos, uint64_t(0)))
  for (int i = 0; i < 8; ++i) code = (code << 8) | CODEC_RC_NEXT();
  // Narrows to [r * start, r * (start + freq)) of the code and renormalises.
#define CODEC_RC_TAKE(r, start, freq)         \
  {                                           \
    code -= (r) * (start);                    \
    range = (r) * (freq);                     \
    while (range < kTop) {                    \
      code = (code << 8) | CODEC_RC_NEXT();   \
      range <<= 8;                            \
    }                                         \
  }
  for (int64_t k = 0; k < n; ++k) {
    const int32_t idx = indexes[k];
    const int32_t* cdf;
    int64_t last;
    const int32_t st = table_of(t, idx, cdf, last);
    if (st != kOk) return make_result(st, k);
    const uint64_t r = range >> kPrecision;
    const uint64_t v = code / r;  // r >= 2^40
    if (v >= kTotal) return make_result(kCorruptCode, k);
    const uint32_t v32 = uint32_t(v);
    int64_t s = search(idx, cdf, last, v32);
    if (s < 0 || s > last) s = 0;
    while (s < last && uint32_t(cdf[s + 1]) <= v32) ++s;  // a negative entry stops it too
    const uint32_t lo = uint32_t(cdf[s]), hi = uint32_t(cdf[s + 1]);
    if (lo > v32 || hi <= v32 || hi > kTotal) return make_result(kBadTable, k);  // lo <= v < hi <= 2^16
    CODEC_RC_TAKE(r, lo, hi - lo)
    if (s < last) {
      out[k] = int32_t(s + int64_t(t.offsets[idx]));
    } else {
      uint64_t raw = 0;
      int64_t chunks = 0;
      for (int64_t j = -1; j < chunks; ++j) {  // j = -1: the chunk count, then the chunks
        const uint64_t rb = range >> kBypassBits;
        const uint64_t c = code / rb;
        if (c >> kBypassBits) return make_result(kCorruptBypass, k);
        CODEC_RC_TAKE(rb, c, 1u)
        if (j < 0) {
          if (c > uint64_t(kMaxBypassChunks)) return make_result(kTooManyChunks, k);
          chunks = int64_t(c);
        } else {
          raw |= c << (kBypassBits * j);
        }
      }
      // raw < 2^36, so these int64 computations cannot overflow.
      const int64_t sv = (raw & 1) ? -int64_t((raw + 1) >> 1) : int64_t(raw >> 1) + last;
      const int64_t value = sv + int64_t(t.offsets[idx]);
      if (value < -2147483647ll - 1 || value > 2147483647ll) return make_result(kEscapeOutOfRange, k);
      out[k] = int32_t(value);
    }
    if (pos > size + kMaxOverreadBytes) return make_result(kTruncated, k);
  }
#undef CODEC_RC_TAKE
#undef CODEC_RC_NEXT
  return make_result(kOk, -1);
}

// ----------------------------------------------------------------------------------
// Substream jobs: what one GPU thread does for substream j (the CPU test harness runs the
// same functions in a loop). bounds: n_sub + 1 entries, validated by the caller
// (codec_rc::validate_bounds): substream j is values [bounds[j], bounds[j+1]).
// ----------------------------------------------------------------------------------
// Pass 1: the exact byte length of substream j, or a fault.
CODEC_HD Result count_substream(int64_t j, const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, const Tables& t) {
  const int64_t a = bounds[j];
  return encode_stream<false>(symbols + a, indexes + a, bounds[j + 1] - a, t, nullptr, INT64_MAX);
}

// Pass 2: substream j into out + starts[j], with room for exactly sizes[j] bytes (pass 1).
CODEC_HD Result write_substream(int64_t j, const int32_t* symbols, const int32_t* indexes, const int64_t* bounds, const Tables& t,
                                uint8_t* out, const int64_t* starts, const int64_t* sizes) {
  const int64_t a = bounds[j];
  return encode_stream<true>(symbols + a, indexes + a, bounds[j + 1] - a, t, out + starts[j], sizes[j]);
}

// Substream j from data + starts[j] (sizes[j] bytes) into out[bounds[j] .. bounds[j+1]).
CODEC_HD Result decode_substream(int64_t j, const uint8_t* data, const int64_t* starts, const int64_t* sizes, const int32_t* indexes,
                                 const int64_t* bounds, const Tables& t, int32_t* out) {
  const int64_t a = bounds[j];
  return decode_stream(data + starts[j], sizes[j], indexes + a, bounds[j + 1] - a, t, out + a, BinarySearch());
}

}  // namespace core
}  // namespace codec_rc
