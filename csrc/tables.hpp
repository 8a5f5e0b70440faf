// Table sets: the range coder's tables converted and validated once per model.
//
// A TableSet (Python: codec._rangecoder.Tables) is made once per model: it copies the
// caller's arrays and checks every table once (validate_tables, rangecoder.hpp). The
// coding functions (encode, decode, encode_substreams, decode_substreams) take one, so a
// call checks only what depends on it (indexes, bounds, thread counts, sizes), and the
// type says the tables were validated. It is read-only afterwards (but for the lookup
// tables below) and shared by any number of calls and threads at once.
//
// The decoder's lookup table of a table (lut(i), 1024 bins) is built on its first use by
// any decode call and kept with the set, published through an atomic pointer (a thread
// that loses the race to build one frees its copy): memory stays proportional to the
// tables actually decoded with, and later calls build nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rangecoder.hpp"

namespace codec_rc {

class TableSet {
 public:
  static constexpr int kLutBits = 10;  // decoder lookup: 2^10 bins per table
  static constexpr int64_t kLutBins = int64_t(1) << kLutBits;

  TableSet() = default;  // no tables: every index is out of range
  ~TableSet();
  TableSet(const TableSet&) = delete;
  TableSet& operator=(const TableSet&) = delete;

  // Copies row i of cdfs (n_tables x stride, row-major), lengths[i] and offsets[i] of
  // every table, then checks the copy with validate_tables. Returns "" or its message;
  // on a fault the set is left with no tables.
  // REQUIRES: cdfs readable for n_tables * stride entries, lengths and offsets for
  //           n_tables; n_tables, stride >= 0; no coding call is using this set.
  std::string assign(const int32_t* cdfs, int64_t n_tables, int64_t stride, const int32_t* lengths, const int32_t* offsets);

  // The validated tables, valid for as long as this set lives and is not reassigned.
  const Tables& tables() const { return t_; }
  int64_t size() const { return t_.n_tables; }

  // Decoder lookup table of table i: lut[b] = the symbol whose interval holds
  // b << (16 - kLutBits). Built on first use, then shared; nullptr if out of memory.
  // Thread-safe. REQUIRES: 0 <= i < size().
  const uint16_t* lut(int32_t i) const {
    const uint16_t* p = luts_[size_t(i)].load(std::memory_order_acquire);
    return p != nullptr ? p : build_lut(i);
  }

 private:
  const uint16_t* build_lut(int32_t i) const;
  void release_luts();

  std::vector<int32_t> cdfs_, lengths_, offsets_;
  Tables t_{};
  std::unique_ptr<std::atomic<uint16_t*>[]> luts_;  // size() pointers, each null or owned
};

}  // namespace codec_rc
