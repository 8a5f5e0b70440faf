// Multi-symbol range coder with 16-bit quantized CDF tables (compressai's convention).
//
// ---------------------------------------------------------------------------------
// Coder variant
// ---------------------------------------------------------------------------------
// A byte-oriented range coder in the style of LZMA's rc / Subbotin's coder, but with a
// 64-bit `range` and a 64-bit `low`, and with carries propagated directly into the
// (in-memory) output buffer instead of through LZMA's cache byte.
//
//   state:  low   (uint64) -- lower end of the current interval, the 64 bits below
//                             the bytes already written
//           range (uint64) -- width of the current interval, kept in [2^56, 2^64)
//                             between symbols (initially 2^64 - 1)
//
//   encode a symbol with cumulative frequency [start, start + freq) out of 2^16:
//           r      = range >> 16
//           low   += r * start          (a wrap-around of `low` past 2^64 is a carry)
//           range  = r * freq
//
//   carry:  the number represented so far is  bytes_written * 2^64 + low.  When the
//           addition to `low` overflows, 1 is added to the written bytes: trailing 0xFF
//           bytes become 0x00 and the first non-0xFF byte is incremented. The coded
//           value always stays below 1.0 (the interval only shrinks inside [0, 1)), so a
//           carry never runs past the first byte. Amortised cost is O(1) per byte.
//
//   renormalisation: while range < 2^56, the top byte of `low` is appended to the
//           output and low and range are shifted left by 8 bits. After a symbol,
//           range >= r >= 2^40, so at most two bytes are written per symbol.
//
//   precision loss: the interval actually used by a symbol table is r * 2^16 <= range;
//           the part range - r * 2^16 < 2^16 is wasted, i.e. less than 2^-40 of the
//           interval -- ~1e-12 bits per symbol, far below any measurable overhead.
//
//   flush:  after the last symbol, the shortest byte string B (0 to 8 bytes) such that
//           B followed by zero bytes lies in [low, low + range) is written. Because
//           range >= 2^56 this is at most 1 byte.
//
//   decoder: mirrors the encoder with `code` = (stream value - low), kept in [0, range):
//           r = range >> 16;  v = code / r  (v < 2^16 for valid streams);  find s with
//           cdf[s] <= v < cdf[s+1];  code -= r * cdf[s];  range = r * freq;  then
//           renormalise, shifting in the next byte (0 past the end of the data).
//
// ---------------------------------------------------------------------------------
// Tables and escape ("bypass") coding
// ---------------------------------------------------------------------------------
// Table i is row i of `cdfs` (row stride `stride`), with cdf_lengths[i] = len entries:
// cdf[0] = 0 < cdf[1] < ... < cdf[len-1] = 65536. It codes symbols 0 .. len-2, and the
// last one (len-2) is the escape symbol. A value v coded with table i becomes
// s = v - offsets[i] (int64). If 0 <= s < len-2 the symbol s is coded; otherwise the
// escape symbol is coded and followed by a raw value in bypass mode:
//     raw = -2*s - 1          if s < 0          (odd)
//     raw = 2*(s - (len-2))   if s >= len-2     (even)
// raw < 2^34, written as  n = number of 4-bit chunks needed (0..9, itself a 4-bit chunk)
// followed by the n chunks, least significant first. Every 4-bit chunk is coded with the
// uniform model (r = range >> 4; low += r * chunk; range = r).
//
// The coding functions take the tables as a TableSet (tables.hpp): copied and validated
// once per model, then shared read-only by every call and thread.
//
// ---------------------------------------------------------------------------------
// Hardening
// ---------------------------------------------------------------------------------
// The decoder never reads outside [data, data + size): bytes past the end read as 0,
// and a stream that needs more than 8 such bytes is rejected as truncated (a valid
// stream needs at most 8). Every loop is bounded: the symbol search by the table length
// (cdf[len-1] = 65536 > v), the escape by 9 chunks. Impossible states (v >= 2^16, a
// chunk count > 9, a decoded value outside int32) are reported as errors. Errors are
// returned as messages (never thrown through, never abort()).
//
// ---------------------------------------------------------------------------------
// Substreams
// ---------------------------------------------------------------------------------
// One array of values can be coded as a list of independent substreams: substream j
// holds elements [bounds[j], bounds[j+1]) and is exactly the stream encode() writes for
// that slice alone (so one substream, bounds = {0, n}, is byte-identical to encode()).
// The substreams are coded on up to `threads` std::threads, which take substreams in
// order from a shared counter; each substream's bytes depend only on its slice, never on
// the thread count or on timing. The decoding threads share the table set's lookup
// tables (tables.hpp: built once, on first use, published atomically). Errors: the one of the lowest-numbered failing
// substream, prefixed with its number (every substream below it is always coded, so the
// message does not depend on timing either). The threads share the tables and the
// inputs read-only and write disjoint outputs; the caller must not write any of them
// during the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/coder_core.hpp"  // the arithmetic itself, shared with the CUDA coder

namespace codec_rc {

constexpr int kPrecision = core::kPrecision;
constexpr uint32_t kTotal = core::kTotal;  // 65536
constexpr int kBypassBits = core::kBypassBits;
constexpr int kMaxBypassChunks = core::kMaxBypassChunks;
constexpr int kMaxOverreadBytes = core::kMaxOverreadBytes;
constexpr int64_t kMaxThreads = 256;  // a larger thread count is refused (ValueError)

// cdfs (n_tables x stride, row-major), lengths and offsets (n_tables each): a view.
using Tables = core::Tables;

// A validated copy of a Tables with the decoder's lookup tables, made once per model
// (tables.hpp). The coding functions below take one: the tables are not checked per call.
class TableSet;

// All functions return "" on success or an error message (for a Python ValueError).

// Checks every table: 2 <= len <= stride, cdf[0] == 0, cdf[len-1] == 65536, strictly
// increasing.
std::string validate_tables(const Tables& t);

// Checks 0 <= indexes[k] < n_tables for all k.
std::string validate_indexes(const int32_t* indexes, int64_t n, int64_t n_tables);

// Encoding and decoding check each index as they read it; a call that fails, for whatever
// reason, reports the first out-of-range index if there is one (validate_indexes's
// message, as if the indexes had been checked before coding), else its own fault. So a
// valid call makes one pass over the indexes, not two.

// Encodes n values.
std::string encode(const int32_t* symbols, const int32_t* indexes, int64_t n, const TableSet& t,
                   std::vector<uint8_t>& out);

// Decodes n values into out (each index is checked as read), with t's lookup tables.
std::string decode(const uint8_t* data, int64_t size, const int32_t* indexes, int64_t n,
                   const TableSet& t, int32_t* out);

// Checks that bounds (n_bounds entries) split [0, n) into substreams:
// n_bounds >= 2, bounds[0] = 0, bounds[k] <= bounds[k+1], bounds[n_bounds-1] = n.
std::string validate_bounds(const int64_t* bounds, int64_t n_bounds, int64_t n);

// Checks 1 <= threads <= kMaxThreads.
std::string validate_threads(int64_t threads);

// Encodes the n_sub = n_bounds - 1 substreams of symbols[0..n) given by bounds; out gets
// one byte string per substream.
// REQUIRES: symbols and indexes readable for n entries; bounds readable for n_bounds
//           entries. Indexes are checked as read; bounds and threads are checked here
//           (validate_bounds, validate_threads).
std::string encode_substreams(const int32_t* symbols, const int32_t* indexes, int64_t n, const int64_t* bounds,
                              int64_t n_bounds, const TableSet& t, int64_t threads,
                              std::vector<std::vector<uint8_t>>& out);

// Decodes substream j (data[j], sizes[j] bytes) into out[bounds[j] .. bounds[j+1]).
// REQUIRES: data and sizes have n_bounds - 1 entries, data[j] readable for sizes[j]
//           bytes (may be null when sizes[j] is 0); indexes readable and out writable for
//           n entries. Indexes are checked as read; bounds, threads and sizes >= 0 are
//           checked here. The threads share t's lookup tables.
std::string decode_substreams(const uint8_t* const* data, const int64_t* sizes, const int32_t* indexes, int64_t n,
                              const int64_t* bounds, int64_t n_bounds, const TableSet& t, int64_t threads, int32_t* out);

}  // namespace codec_rc
