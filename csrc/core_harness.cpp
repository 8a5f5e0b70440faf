// Test harness of the shared coder core (cuda/coder_core.hpp) in codec._rangecoder: the
// exact functions the CUDA kernels run, called on the CPU, so that their bytes, faults
// and bounds are tested on every machine (tests/test_cuda_core.py).
//
//   _core_encode(symbols, indexes, cdfs, cdf_lengths, offsets, capacity, count_only)
//       -> (status, at, bytes | count, guard_ok)
//   _core_decode(data, indexes, cdfs, cdf_lengths, offsets) -> (status, at, values, guard_ok)
//   _core_encode_substreams(symbols, indexes, cdfs, cdf_lengths, offsets, bounds)
//       -> (statuses, ats, strings)         two passes, as the kernels: count, then write
//   _core_decode_substreams(strings, indexes, cdfs, cdf_lengths, offsets, bounds)
//       -> (statuses, ats, values)
//
// Unlike the public functions, these do NOT validate the tables or indexes (the core's own
// per-symbol checks are under test) and use the GPU's symbol search (BinarySearch), not the
// CPU's lookup tables. Outputs are followed by guard bytes; guard_ok = False means the core
// wrote past its capacity. Argument shapes are checked (an unchecked shape would let the
// harness itself read out of bounds). Not a public API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/coder_core.hpp"
#include "rangecoder.hpp"

namespace py = pybind11;
using codec_rc::core::Result;

namespace {

using I32 = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
constexpr int kGuard = 64;
constexpr uint8_t kGuardByte = 0xA5;

struct HarnessTables {
  I32 cdfs, lengths, offsets;
  codec_rc::core::Tables t;
};

HarnessTables tables_of(const I32& cdfs, const I32& lengths, const I32& offsets) {
  if (cdfs.ndim() != 2 || lengths.ndim() != 1 || offsets.ndim() != 1) throw py::value_error("cdfs must be 2-D, cdf_lengths and offsets 1-D");
  if (lengths.shape(0) != cdfs.shape(0) || offsets.shape(0) != cdfs.shape(0)) {
    throw py::value_error("cdf_lengths and offsets must have one entry per row of cdfs");
  }
  HarnessTables h{cdfs, lengths, offsets, {}};
  h.t.cdfs = cdfs.data();
  h.t.n_tables = cdfs.shape(0);
  h.t.stride = cdfs.shape(1);
  h.t.lengths = lengths.data();
  h.t.offsets = offsets.data();
  return h;
}

void check_values(const I32& symbols, const I32& indexes) {
  if (symbols.ndim() != 1 || indexes.ndim() != 1 || symbols.shape(0) != indexes.shape(0)) {
    throw py::value_error("symbols and indexes must be 1-D of the same length");
  }
}

std::vector<int64_t> checked_bounds(const I64& bounds, int64_t n) {
  if (bounds.ndim() != 1) throw py::value_error("bounds must be 1-D");
  std::vector<int64_t> b(bounds.data(), bounds.data() + bounds.shape(0));
  const std::string err = codec_rc::validate_bounds(b.data(), int64_t(b.size()), n);
  if (!err.empty()) throw py::value_error(err);
  return b;
}

bool guard_ok(const uint8_t* p) {
  for (int i = 0; i < kGuard; ++i) {
    if (p[i] != kGuardByte) return false;
  }
  return true;
}

py::tuple core_encode(const I32& symbols, const I32& indexes, const I32& cdfs, const I32& lengths, const I32& offsets, int64_t capacity,
                      bool count_only) {
  check_values(symbols, indexes);
  const HarnessTables h = tables_of(cdfs, lengths, offsets);
  const int64_t n = symbols.shape(0);
  if (count_only) {
    const Result r = codec_rc::core::encode_stream<false>(symbols.data(), indexes.data(), n, h.t, nullptr, capacity);
    return py::make_tuple(r.status, r.at, r.bytes, true);
  }
  if (capacity < 0) capacity = 0;
  std::vector<uint8_t> buf(size_t(capacity) + kGuard, kGuardByte);
  const Result r = codec_rc::core::encode_stream<true>(symbols.data(), indexes.data(), n, h.t, buf.data(), capacity);
  return py::make_tuple(r.status, r.at, py::bytes(reinterpret_cast<const char*>(buf.data()), size_t(r.bytes)),
                        guard_ok(buf.data() + capacity));
}

py::tuple core_decode(const py::bytes& data, const I32& indexes, const I32& cdfs, const I32& lengths, const I32& offsets) {
  if (indexes.ndim() != 1) throw py::value_error("indexes must be 1-D");
  const HarnessTables h = tables_of(cdfs, lengths, offsets);
  const std::string bytes = data;  // an exact-size heap copy: reads past it are ASan's to catch
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  const int64_t n = indexes.shape(0);
  std::vector<int32_t> out(size_t(n) + kGuard / 4, int32_t(0xA5A5A5A5));
  const Result r = codec_rc::core::decode_stream(copy.empty() ? nullptr : copy.data(), int64_t(copy.size()), indexes.data(), n, h.t,
                                                 out.data(), codec_rc::core::BinarySearch());
  py::array_t<int32_t> values(n);
  std::copy(out.begin(), out.begin() + n, values.mutable_data());
  return py::make_tuple(r.status, r.at, values, guard_ok(reinterpret_cast<const uint8_t*>(out.data() + n)));
}

py::tuple core_encode_substreams(const I32& symbols, const I32& indexes, const I32& cdfs, const I32& lengths, const I32& offsets,
                                 const I64& bounds) {
  check_values(symbols, indexes);
  const HarnessTables h = tables_of(cdfs, lengths, offsets);
  const std::vector<int64_t> b = checked_bounds(bounds, symbols.shape(0));
  const int64_t n_sub = int64_t(b.size()) - 1;
  std::vector<int64_t> sizes(static_cast<size_t>(n_sub)), starts(static_cast<size_t>(n_sub) + 1, 0);
  std::vector<int32_t> statuses(static_cast<size_t>(n_sub));
  std::vector<int64_t> ats(static_cast<size_t>(n_sub));
  for (int64_t j = 0; j < n_sub; ++j) {  // pass 1 (one GPU thread each)
    const Result r = codec_rc::core::count_substream(j, symbols.data(), indexes.data(), b.data(), h.t);
    statuses[size_t(j)] = r.status;
    ats[size_t(j)] = r.at;
    sizes[size_t(j)] = r.status == codec_rc::core::kOk ? r.bytes : 0;
    starts[size_t(j) + 1] = starts[size_t(j)] + sizes[size_t(j)];
  }
  std::vector<uint8_t> out(size_t(starts.back()) + kGuard, kGuardByte);
  for (int64_t j = 0; j < n_sub; ++j) {  // pass 2, into the compacted buffer
    if (statuses[size_t(j)] != codec_rc::core::kOk) continue;
    const Result r = codec_rc::core::write_substream(j, symbols.data(), indexes.data(), b.data(), h.t, out.data(), starts.data(),
                                                     sizes.data());
    if (r.status != codec_rc::core::kOk || r.bytes != sizes[size_t(j)]) throw std::runtime_error("pass 2 disagrees with pass 1");
  }
  if (!guard_ok(out.data() + starts.back())) throw std::runtime_error("pass 2 wrote past the buffer");
  py::list strings;
  for (int64_t j = 0; j < n_sub; ++j) {
    strings.append(py::bytes(reinterpret_cast<const char*>(out.data() + starts[size_t(j)]), size_t(sizes[size_t(j)])));
  }
  return py::make_tuple(statuses, ats, strings);
}

py::tuple core_decode_substreams(const py::list& strings, const I32& indexes, const I32& cdfs, const I32& lengths, const I32& offsets,
                                 const I64& bounds) {
  if (indexes.ndim() != 1) throw py::value_error("indexes must be 1-D");
  const HarnessTables h = tables_of(cdfs, lengths, offsets);
  const int64_t n = indexes.shape(0);
  const std::vector<int64_t> b = checked_bounds(bounds, n);
  const int64_t n_sub = int64_t(b.size()) - 1;
  if (int64_t(strings.size()) != n_sub) throw py::value_error("one string per substream");
  std::vector<uint8_t> data;  // concatenated, as sent to the GPU
  std::vector<int64_t> starts, sizes;
  for (const auto& s : strings) {
    const std::string bytes = py::cast<py::bytes>(s);
    starts.push_back(int64_t(data.size()));
    sizes.push_back(int64_t(bytes.size()));
    data.insert(data.end(), bytes.begin(), bytes.end());
  }
  std::vector<int32_t> out(size_t(n) + kGuard / 4, int32_t(0xA5A5A5A5));
  std::vector<int32_t> statuses(static_cast<size_t>(n_sub));
  std::vector<int64_t> ats(static_cast<size_t>(n_sub));
  for (int64_t j = 0; j < n_sub; ++j) {
    const Result r = codec_rc::core::decode_substream(j, data.data(), starts.data(), sizes.data(), indexes.data(), b.data(), h.t,
                                                      out.data());
    statuses[size_t(j)] = r.status;
    ats[size_t(j)] = r.at;
  }
  if (!guard_ok(reinterpret_cast<const uint8_t*>(out.data() + n))) throw std::runtime_error("decode wrote past the output");
  py::array_t<int32_t> values(n);
  std::copy(out.begin(), out.begin() + n, values.mutable_data());
  return py::make_tuple(statuses, ats, values);
}

}  // namespace

// Called from PYBIND11_MODULE in bindings.cpp.
void add_core_harness(py::module_& m) {
  m.def("_core_encode", &core_encode, py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"),
        py::arg("offsets"), py::arg("capacity"), py::arg("count_only") = false);
  m.def("_core_decode", &core_decode, py::arg("data"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"));
  m.def("_core_encode_substreams", &core_encode_substreams, py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"),
        py::arg("cdf_lengths"), py::arg("offsets"), py::arg("bounds"));
  m.def("_core_decode_substreams", &core_decode_substreams, py::arg("strings"), py::arg("indexes"), py::arg("cdfs"),
        py::arg("cdf_lengths"), py::arg("offsets"), py::arg("bounds"));
  py::dict names;
  for (int32_t s = 0; s <= codec_rc::core::kBadArgument; ++s) names[py::int_(s)] = codec_rc::core::status_name(s);
  m.attr("_CORE_STATUS") = names;
  m.attr("_CORE_MAX_BYTES_PER_VALUE") = codec_rc::core::kMaxBytesPerValue;
}
