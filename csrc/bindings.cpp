// pybind11 bindings: codec._rangecoder.Tables (a table set, converted and validated once
// per model: csrc/tables.hpp), and encode / decode (one stream) and encode_substreams /
// decode_substreams (a list of independent substreams coded on several threads) on int32
// numpy arrays with a Tables.
//
// Tables(cdfs, cdf_lengths, offsets) checks the arrays' types and shapes, copies them and
// validates the copy, with the GIL held, once. A coding call checks its own arguments'
// types and shapes with the GIL held, then releases the GIL for the coding loop (pure C++
// on raw pointers, which checks every index as it reads it; gil.hpp), so independent streams
// can be coded from several threads with one Tables. Errors from the core become ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "gil.hpp"
#include "rangecoder.hpp"
#include "tables.hpp"

namespace py = pybind11;

namespace {

// A C-contiguous array of T (int32 or int64) of the given ndim, or TypeError / ValueError
// naming `name`.
template <class T = int32_t>
py::array checked(const py::handle& obj, const char* name, int ndim) {
  const std::string type = sizeof(T) == 4 ? "int32" : "int64";
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(name) + " must be a numpy " + type + " array, got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'i' || dt.itemsize() != int(sizeof(T))) {
    throw py::type_error(std::string(name) + " must have dtype " + type + ", got " + std::string(py::str(dt)));
  }
  if (!dt.equal(py::dtype::of<T>())) {  // e.g. big-endian '>i4' on a little-endian machine
    throw py::type_error(std::string(name) + " must have native byte order " + type + ", got " + std::string(py::str(dt)));
  }
  if (a.ndim() != ndim) {
    throw py::value_error(std::string(name) + " must be a " + std::to_string(ndim) + "-D array, got ndim=" + std::to_string(a.ndim()));
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous (use numpy.ascontiguousarray)");
  }
  return a;
}

const int32_t* ptr(const py::array& a) { return static_cast<const int32_t*>(a.data()); }

// A table set made once: types, shapes and row counts checked, then copied and validated
// (TableSet::assign), all with the GIL held, so the tables validated are the ones used
// whatever other threads do to the caller's arrays later.
std::unique_ptr<codec_rc::TableSet> make_tables(const py::handle& cdfs, const py::handle& cdf_lengths, const py::handle& offsets) {
  const py::array c = checked(cdfs, "cdfs", 2);
  const py::array l = checked(cdf_lengths, "cdf_lengths", 1);
  const py::array o = checked(offsets, "offsets", 1);
  const int64_t rows = c.shape(0);
  if (l.shape(0) != rows) {
    throw py::value_error("cdf_lengths has " + std::to_string(l.shape(0)) + " entries but cdfs has " + std::to_string(rows) + " rows");
  }
  if (o.shape(0) != rows) {
    throw py::value_error("offsets has " + std::to_string(o.shape(0)) + " entries but cdfs has " + std::to_string(rows) + " rows");
  }
  auto tables = std::make_unique<codec_rc::TableSet>();
  const std::string err = tables->assign(ptr(c), rows, c.shape(1), ptr(l), ptr(o));
  if (!err.empty()) throw py::value_error(err);
  return tables;
}

// Indexes are not copied (that would cost a pass over all values): the core checks each
// one as it reads it, and a call that fails names the first bad one (rangecoder.hpp).
py::array checked_indexes(const py::handle& indexes) { return checked(indexes, "indexes", 1); }

void check_same_length(const py::array& sym, int64_t n) {
  if (sym.shape(0) != n) {
    throw py::value_error("symbols and indexes must have the same length, got " + std::to_string(sym.shape(0)) + " and " +
                          std::to_string(n));
  }
}

py::bytes encode(const py::handle& symbols, const py::handle& indexes, const codec_rc::TableSet& tables) {
  py::array sym = checked(symbols, "symbols", 1);
  const py::array idx = checked_indexes(indexes);
  const int64_t n = idx.shape(0);
  check_same_length(sym, n);
  std::vector<uint8_t> out;
  const std::string err = codec_py::without_gil([&] { return codec_rc::encode(ptr(sym), ptr(idx), n, tables, out); });
  if (!err.empty()) throw py::value_error(err);
  return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

// Holds a PyBUF_SIMPLE view (contiguous bytes) for as long as it lives; while a view is
// held, a bytearray cannot be resized, so the pointer stays valid without the GIL.
struct ByteView {
  Py_buffer view{};
  bool ok = false;
  explicit ByteView(const py::handle& obj, const std::string& name = "data") {
    if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error(name + " must be bytes, bytearray or a contiguous buffer, got " +
                           std::string(py::str(py::type::of(obj).attr("__name__"))));
    }
    ok = true;
  }
  ~ByteView() {
    if (ok) PyBuffer_Release(&view);
  }
  ByteView(const ByteView&) = delete;
  ByteView& operator=(const ByteView&) = delete;
};

py::array_t<int32_t> decode(const py::handle& data, const py::handle& indexes, const codec_rc::TableSet& tables) {
  ByteView view(data);
  const py::array idx = checked_indexes(indexes);
  const int64_t n = idx.shape(0);
  py::array_t<int32_t> out(n);
  int32_t* dst = out.mutable_data();
  const auto* bytes = static_cast<const uint8_t*>(view.view.buf);
  const int64_t size = view.view.len;
  const std::string err = codec_py::without_gil([&] { return codec_rc::decode(bytes, size, ptr(idx), n, tables, dst); });
  if (!err.empty()) throw py::value_error(err);
  return out;
}

// Bounds (1-D int64) copied.
std::vector<int64_t> copy_bounds(const py::handle& bounds) {
  const py::array b = checked<int64_t>(bounds, "bounds", 1);
  const auto* p = static_cast<const int64_t*>(b.data());
  return std::vector<int64_t>(p, p + b.shape(0));
}

// A thread count as int64 (range checked by the core; one beyond int64 refused here).
int64_t thread_count(const py::handle& threads) {
  if (py::isinstance<py::bool_>(threads) || !py::isinstance<py::int_>(threads)) {
    throw py::type_error("threads must be an int, got " + std::string(py::str(py::type::of(threads).attr("__name__"))));
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(threads.ptr(), &overflow);
  if (overflow != 0) {
    throw py::value_error("threads = " + std::string(py::str(threads)) + " is invalid: it must be in [1, " +
                          std::to_string(codec_rc::kMaxThreads) + "]");
  }
  return int64_t(v);
}

// Bounds of n values copied and checked (with the thread count) while the GIL is held:
// O(substreams), and the validated bounds are the ones used.
std::vector<int64_t> checked_bounds(const py::handle& bounds, int64_t n, const py::handle& threads) {
  std::vector<int64_t> b = copy_bounds(bounds);
  std::string err = codec_rc::validate_bounds(b.data(), int64_t(b.size()), n);
  if (err.empty()) err = codec_rc::validate_threads(thread_count(threads));
  if (!err.empty()) throw py::value_error(err);
  return b;
}

py::list encode_substreams(const py::handle& symbols, const py::handle& indexes, const codec_rc::TableSet& tables,
                           const py::handle& bounds, const py::handle& threads) {
  py::array sym = checked(symbols, "symbols", 1);
  const py::array idx = checked_indexes(indexes);
  const int64_t n = idx.shape(0);
  check_same_length(sym, n);
  const std::vector<int64_t> b = checked_bounds(bounds, n, threads);
  const int64_t n_threads = thread_count(threads);
  std::vector<std::vector<uint8_t>> out;
  const std::string err = codec_py::without_gil(
      [&] { return codec_rc::encode_substreams(ptr(sym), ptr(idx), n, b.data(), int64_t(b.size()), tables, n_threads, out); });
  if (!err.empty()) throw py::value_error(err);
  py::list result;
  for (const auto& s : out) result.append(py::bytes(reinterpret_cast<const char*>(s.data()), s.size()));
  return result;
}

py::array_t<int32_t> decode_substreams(const py::handle& data, const py::handle& indexes, const codec_rc::TableSet& tables,
                                       const py::handle& bounds, const py::handle& threads) {
  if (!py::isinstance<py::sequence>(data) || py::isinstance<py::bytes>(data) || py::isinstance<py::str>(data) ||
      PyByteArray_Check(data.ptr())) {
    throw py::type_error("data must be a list of byte strings (one per substream), got " +
                         std::string(py::str(py::type::of(data).attr("__name__"))));
  }
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(data);
  const py::array idx = checked_indexes(indexes);
  const int64_t n = idx.shape(0);
  const std::vector<int64_t> b = checked_bounds(bounds, n, threads);
  const int64_t n_threads = thread_count(threads);
  const int64_t n_sub = int64_t(b.size()) - 1;
  if (int64_t(seq.size()) != n_sub) {
    throw py::value_error("got " + std::to_string(seq.size()) + " substreams but bounds describe " + std::to_string(n_sub));
  }
  std::vector<std::unique_ptr<ByteView>> views;
  std::vector<const uint8_t*> ptrs;
  std::vector<int64_t> sizes;
  views.reserve(seq.size());
  for (const auto& item : seq) {
    views.push_back(std::make_unique<ByteView>(item, "data[" + std::to_string(views.size()) + "]"));
    ptrs.push_back(static_cast<const uint8_t*>(views.back()->view.buf));
    sizes.push_back(int64_t(views.back()->view.len));
  }
  py::array_t<int32_t> out(n);
  int32_t* dst = out.mutable_data();
  const std::string err = codec_py::without_gil([&] {
    return codec_rc::decode_substreams(ptrs.data(), sizes.data(), ptr(idx), n, b.data(), int64_t(b.size()), tables, n_threads,
                                       dst);
  });
  if (!err.empty()) throw py::value_error(err);
  return out;
}

}  // namespace

void add_core_harness(py::module_& m);  // core_harness.cpp: test hooks of the shared core

PYBIND11_MODULE(_rangecoder, m) {
  m.doc() = "Multi-symbol range coder with 16-bit quantized CDF tables (see codec.rangecoder).";
  py::class_<codec_rc::TableSet>(m, "Tables",
                                 "Quantized CDF tables (int32 cdfs [N, L], cdf_lengths [N], offsets [N]), copied and "
                                 "validated once; read-only, shared by any number of coding calls and threads.")
      .def(py::init(&make_tables), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"))
      .def("__len__", &codec_rc::TableSet::size);
  m.def("encode", &encode, py::arg("symbols"), py::arg("indexes"), py::arg("tables"),
        "Encode int32 values with per-value table indexes into `tables`; returns bytes.");
  m.def("decode", &decode, py::arg("data"), py::arg("indexes"), py::arg("tables"), "Decode len(indexes) int32 values from data.");
  m.def("encode_substreams", &encode_substreams, py::arg("symbols"), py::arg("indexes"), py::arg("tables"), py::arg("bounds"),
        py::arg("threads"), "Encode substream j = values [bounds[j], bounds[j+1]) on `threads` threads; returns a list of bytes.");
  m.def("decode_substreams", &decode_substreams, py::arg("data"), py::arg("indexes"), py::arg("tables"), py::arg("bounds"),
        py::arg("threads"), "Decode a list of substreams (bounds as for encode_substreams) on `threads` threads.");
  m.attr("PRECISION") = codec_rc::kPrecision;
  m.attr("MAX_THREADS") = codec_rc::kMaxThreads;
  add_core_harness(m);
}
