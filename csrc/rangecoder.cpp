// Range coder core; see rangecoder.hpp for the design and stream format.
#include "rangecoder.hpp"

#include <cstring>
#include <limits>

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

std::string decode(const uint8_t* data, int64_t size, const int32_t* indexes, int64_t n, const Tables& t, int32_t* out) {
  if (n == 0) return {};
  // Per-table lookup: lut[b] = the symbol whose interval contains b << kLutShift. Built
  // on first use of a table, so memory is proportional to the tables actually used.
  constexpr int64_t kBins = int64_t(1) << kLutBits;
  std::vector<uint16_t> lut;
  std::vector<int32_t> slot(size_t(t.n_tables), -1);
  int32_t n_built = 0;

  Decoder dec(data, size);
  for (int64_t k = 0; k < n; ++k) {
    const int32_t idx = indexes[k];
    if (uint64_t(uint32_t(idx)) >= uint64_t(t.n_tables)) return "indexes[" + std::to_string(k) + "] is out of range (changed during coding)";
    const int32_t* cdf = t.cdfs + int64_t(idx) * t.stride;
    const int64_t last = int64_t(t.lengths[idx]) - 2;
    if (slot[idx] < 0) {
      slot[idx] = n_built++;
      lut.resize(size_t(n_built) * kBins);
      uint16_t* tl = lut.data() + int64_t(slot[idx]) * kBins;
      int64_t s = 0;
      for (int64_t b = 0; b < kBins; ++b) {
        const int32_t x = int32_t(b << kLutShift);
        while (cdf[s + 1] <= x) ++s;  // bounded: cdf[len-1] = 65536 > x
        tl[b] = uint16_t(s);
      }
    }
    const uint16_t* tl = lut.data() + int64_t(slot[idx]) * kBins;
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

}  // namespace codec_rc
