// Table sets; see tables.hpp.
#include "tables.hpp"

#include <new>

namespace codec_rc {

TableSet::~TableSet() { release_luts(); }

void TableSet::release_luts() {
  if (luts_) {
    for (int64_t i = 0; i < t_.n_tables; ++i) delete[] luts_[size_t(i)].load(std::memory_order_relaxed);
  }
  luts_.reset();
}

std::string TableSet::assign(const int32_t* cdfs, int64_t n_tables, int64_t stride, const int32_t* lengths, const int32_t* offsets) {
  release_luts();
  t_ = Tables{};
  cdfs_.assign(cdfs, cdfs + n_tables * stride);
  lengths_.assign(lengths, lengths + n_tables);
  offsets_.assign(offsets, offsets + n_tables);
  Tables t{};
  t.cdfs = cdfs_.data();
  t.n_tables = n_tables;
  t.stride = stride;
  t.lengths = lengths_.data();
  t.offsets = offsets_.data();
  std::string err = validate_tables(t);  // the copy: what is checked is what is used
  if (!err.empty()) {
    cdfs_.clear();
    lengths_.clear();
    offsets_.clear();
    return err;
  }
  luts_.reset(new std::atomic<uint16_t*>[size_t(n_tables)]);
  for (int64_t i = 0; i < n_tables; ++i) luts_[size_t(i)].store(nullptr, std::memory_order_relaxed);
  t_ = t;
  return {};
}

const uint16_t* TableSet::build_lut(int32_t i) const {
  uint16_t* fresh = new (std::nothrow) uint16_t[size_t(kLutBins)];
  if (fresh == nullptr) return nullptr;
  const int32_t* cdf = t_.cdfs + int64_t(i) * t_.stride;
  int64_t s = 0;
  for (int64_t b = 0; b < kLutBins; ++b) {
    const int32_t x = int32_t(b << (kPrecision - kLutBits));
    while (cdf[s + 1] <= x) ++s;  // bounded: cdf[len-1] = 65536 > x (validated)
    fresh[b] = uint16_t(s);
  }
  uint16_t* expected = nullptr;
  if (luts_[size_t(i)].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel, std::memory_order_acquire)) return fresh;
  delete[] fresh;  // another thread published table i's first
  return expected;
}

}  // namespace codec_rc
