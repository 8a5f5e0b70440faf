// pybind11 bindings: codec._rangecoder.encode / decode on int32 numpy arrays.
//
// Argument types and shapes are checked with the GIL held; then the GIL is released for
// table/index validation and the coding loop (pure C++ on raw pointers), so independent
// streams can be coded from several threads. Errors from the core become ValueError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "rangecoder.hpp"

namespace py = pybind11;

namespace {

// A C-contiguous int32 array of the given ndim, or TypeError / ValueError naming `name`.
py::array checked(const py::handle& obj, const char* name, int ndim) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(name) + " must be a numpy int32 array, got " + std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  if (dt.kind() != 'i' || dt.itemsize() != 4) {
    throw py::type_error(std::string(name) + " must have dtype int32, got " + std::string(py::str(dt)));
  }
  if (!dt.equal(py::dtype::of<int32_t>())) {  // e.g. big-endian '>i4' on a little-endian machine
    throw py::type_error(std::string(name) + " must have native byte order int32, got " + std::string(py::str(dt)));
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

// The tables are copied (with the GIL held) so that the validated tables are exactly
// the ones used for coding, whatever other threads do to the caller's arrays meanwhile.
// Indexes are not copied (that would cost a pass over all values); the core re-checks
// each index as it reads it.
struct Inputs {
  py::array indexes;
  std::vector<int32_t> cdfs, lengths, offsets;
  codec_rc::Tables tables;
  int64_t n = 0;
};

Inputs check_tables(const py::handle& indexes, const py::handle& cdfs, const py::handle& cdf_lengths, const py::handle& offsets) {
  Inputs in;
  in.indexes = checked(indexes, "indexes", 1);
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
  in.cdfs.assign(ptr(c), ptr(c) + c.size());
  in.lengths.assign(ptr(l), ptr(l) + rows);
  in.offsets.assign(ptr(o), ptr(o) + rows);
  in.tables.cdfs = in.cdfs.data();
  in.tables.n_tables = rows;
  in.tables.stride = c.shape(1);
  in.tables.lengths = in.lengths.data();
  in.tables.offsets = in.offsets.data();
  in.n = in.indexes.shape(0);
  return in;
}

// Validation shared by encode and decode; runs without the GIL. Returns "" when valid.
std::string validate(const Inputs& in) {
  std::string err = codec_rc::validate_tables(in.tables);
  if (err.empty()) err = codec_rc::validate_indexes(ptr(in.indexes), in.n, in.tables.n_tables);
  return err;
}

py::bytes encode(const py::handle& symbols, const py::handle& indexes, const py::handle& cdfs, const py::handle& cdf_lengths,
                 const py::handle& offsets) {
  py::array sym = checked(symbols, "symbols", 1);
  Inputs in = check_tables(indexes, cdfs, cdf_lengths, offsets);
  if (sym.shape(0) != in.n) {
    throw py::value_error("symbols and indexes must have the same length, got " + std::to_string(sym.shape(0)) + " and " +
                          std::to_string(in.n));
  }
  std::vector<uint8_t> out;
  std::string err;
  {
    py::gil_scoped_release release;
    err = validate(in);
    if (err.empty()) err = codec_rc::encode(ptr(sym), ptr(in.indexes), in.n, in.tables, out);
  }
  if (!err.empty()) throw py::value_error(err);
  return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

// Holds a PyBUF_SIMPLE view (contiguous bytes) for as long as it lives; while a view is
// held, a bytearray cannot be resized, so the pointer stays valid without the GIL.
struct ByteView {
  Py_buffer view{};
  bool ok = false;
  explicit ByteView(const py::handle& obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error("data must be bytes, bytearray or a contiguous buffer, got " +
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

py::array_t<int32_t> decode(const py::handle& data, const py::handle& indexes, const py::handle& cdfs, const py::handle& cdf_lengths,
                            const py::handle& offsets) {
  ByteView view(data);
  Inputs in = check_tables(indexes, cdfs, cdf_lengths, offsets);
  py::array_t<int32_t> out(in.n);
  int32_t* dst = out.mutable_data();
  const auto* bytes = static_cast<const uint8_t*>(view.view.buf);
  const int64_t size = view.view.len;
  std::string err;
  {
    py::gil_scoped_release release;
    err = validate(in);
    if (err.empty()) err = codec_rc::decode(bytes, size, ptr(in.indexes), in.n, in.tables, dst);
  }
  if (!err.empty()) throw py::value_error(err);
  return out;
}

}  // namespace

PYBIND11_MODULE(_rangecoder, m) {
  m.doc() = "Multi-symbol range coder with 16-bit quantized CDF tables (see codec.rangecoder).";
  m.def("encode", &encode, py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"),
        "Encode int32 values with per-value table indexes; returns bytes.");
  m.def("decode", &decode, py::arg("data"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"),
        "Decode len(indexes) int32 values from data.");
  m.attr("PRECISION") = codec_rc::kPrecision;
}
