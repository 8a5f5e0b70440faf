// pybind11 module codec._cuda_rangecoder: the range coder's substreams coded on a CUDA GPU,
// one thread per substream (kernels.cu over coder_core.hpp), byte-identical to
// codec._rangecoder.encode_substreams. No torch: the value arrays are DLPack device arrays
// (any object with __dlpack__ / __dlpack_device__: torch CUDA tensors, cupy arrays).
//
//   encode_substreams(symbols, indexes, cdfs, cdf_lengths, offsets, bounds) -> list[bytes]
//   decode_substreams(strings, indexes, cdfs, cdf_lengths, offsets, bounds, out) -> None
//   device_count() -> int   (0 without a driver or a GPU; never raises)
//
// symbols, indexes, out: 1-D int32 CUDA arrays of n = bounds[-1] values; cdfs: 2-D int32,
// cdf_lengths and offsets: 1-D int32 CUDA arrays (all on one device, C-contiguous);
// bounds: a host numpy int64 array (codec.entropy.substreams); strings: host byte strings.
// Every argument is checked (dtype, ndim, contiguity, lengths, device) before anything
// runs; the tables are copied to the host, validated there (codec_rc::validate_tables) and
// the validated copy is what the kernels read. Indexes are checked by the core as read.
// Work is queued on the legacy default stream (the arrays are exported for it) and the call
// returns once it is done. Errors: TypeError / ValueError as codec._rangecoder raises them
// ("substream j: elements a..b: ..." for a fault, the lowest-numbered substream's),
// RuntimeError for a CUDA error.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../gil.hpp"
#include "../rangecoder.hpp"
#include "kernels.hpp"

namespace py = pybind11;
using codec_rc::core::Result;

namespace {

// ----------------------------------------------------------------------------------
// DLPack (the stable C ABI, dlpack.h v0.8; only what is read here)
// ----------------------------------------------------------------------------------
struct DLDevice {
  int32_t device_type;  // 1 = CPU, 2 = CUDA
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 0 = int
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null = compact row-major
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
constexpr int32_t kDLCUDA = 2;
constexpr uint8_t kDLInt = 0;

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

// A borrowed view of a DLPack CUDA array; the capsule (kept alive here, never renamed)
// calls the producer's deleter when released, as the protocol says for an unconsumed one.
struct DeviceArray {
  py::object capsule;
  const DLTensor* t = nullptr;
  int64_t size = 0;  // elements
  int device = -1;
  void* data() const { return static_cast<char*>(t->data) + t->byte_offset; }
};

DeviceArray device_array(const py::handle& obj, const char* name, int ndim) {
  if (!py::hasattr(obj, "__dlpack__") || !py::hasattr(obj, "__dlpack_device__")) {
    throw py::type_error(std::string(name) + " must be a CUDA array with __dlpack__ (a torch CUDA tensor, a cupy array), got " +
                         type_name(obj));
  }
  const py::tuple dev = obj.attr("__dlpack_device__")();
  const int device_type = dev[0].cast<int>();
  if (device_type != kDLCUDA) {
    throw py::type_error(std::string(name) + " must be on a CUDA device (DLPack device type 2), got device type " +
                         std::to_string(device_type));
  }
  DeviceArray a;
  try {
    a.capsule = obj.attr("__dlpack__")(py::arg("stream") = 1);  // exported for the legacy default stream
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_TypeError)) throw;
    a.capsule = obj.attr("__dlpack__")();
  }
  if (!PyCapsule_IsValid(a.capsule.ptr(), "dltensor")) throw py::type_error(std::string(name) + ".__dlpack__() did not return a DLPack capsule");
  const auto* mt = static_cast<const DLManagedTensor*>(PyCapsule_GetPointer(a.capsule.ptr(), "dltensor"));
  a.t = &mt->dl_tensor;
  a.device = a.t->device.device_id;
  if (a.t->device.device_type != kDLCUDA) throw py::type_error(std::string(name) + " must be on a CUDA device");
  if (a.t->dtype.code != kDLInt || a.t->dtype.bits != 32 || a.t->dtype.lanes != 1) {
    throw py::type_error(std::string(name) + " must have dtype int32");
  }
  if (a.t->ndim != ndim) {
    throw py::value_error(std::string(name) + " must be a " + std::to_string(ndim) + "-D array, got ndim=" + std::to_string(a.t->ndim));
  }
  a.size = 1;
  int64_t expected = 1;  // row-major stride of the dimension, in elements
  for (int d = ndim - 1; d >= 0; --d) {
    const int64_t extent = a.t->shape[d];
    if (extent < 0) throw py::value_error(std::string(name) + " has a negative extent");
    if (a.t->strides != nullptr && extent > 1 && a.t->strides[d] != expected) {
      throw py::value_error(std::string(name) + " must be C-contiguous");
    }
    expected *= extent;
    a.size *= extent;
  }
  if (a.size > 0 && a.t->data == nullptr) throw py::value_error(std::string(name) + " has no data");
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(int32_t) != 0) throw py::value_error(std::string(name) + " is not 4-byte aligned");
  return a;
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}
void check(int e, const char* what) { check(cudaError_t(e), what); }

// Device memory owned for the duration of a call.
struct DeviceBuffer {
  void* p = nullptr;
  DeviceBuffer(size_t bytes, const char* what) { check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), what); }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

template <class T>
std::unique_ptr<DeviceBuffer> upload(const std::vector<T>& v, const char* what) {
  auto b = std::make_unique<DeviceBuffer>(v.size() * sizeof(T), what);
  if (!v.empty()) check(cudaMemcpy(b->p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), what);
  return b;
}

template <class T>
std::vector<T> download(const void* p, int64_t n, const char* what) {
  std::vector<T> v(size_t(std::max<int64_t>(n, 0)));
  if (n > 0) check(cudaMemcpy(v.data(), p, size_t(n) * sizeof(T), cudaMemcpyDeviceToHost), what);
  return v;
}

// Makes `device` current for the call and restores the previous one.
struct DeviceGuard {
  int previous = 0;
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous), "cudaGetDevice");
    check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous); }
};

// The tables: checked, copied to the host, validated, and uploaded again from that copy.
struct DeviceTables {
  std::vector<int32_t> cdfs, lengths, offsets;
  std::unique_ptr<DeviceBuffer> d_cdfs, d_lengths, d_offsets;
  codec_rc::core::Tables t;  // device pointers
  int device = -1;
};

DeviceTables tables(const py::handle& cdfs, const py::handle& cdf_lengths, const py::handle& offsets, int device) {
  const DeviceArray c = device_array(cdfs, "cdfs", 2);
  const DeviceArray l = device_array(cdf_lengths, "cdf_lengths", 1);
  const DeviceArray o = device_array(offsets, "offsets", 1);
  for (const DeviceArray* a : {&c, &l, &o}) {
    if (a->device != device) throw py::value_error("all arrays must be on the same CUDA device as indexes");
  }
  const int64_t rows = c.t->shape[0];
  if (l.size != rows) throw py::value_error("cdf_lengths has " + std::to_string(l.size) + " entries but cdfs has " + std::to_string(rows) + " rows");
  if (o.size != rows) throw py::value_error("offsets has " + std::to_string(o.size) + " entries but cdfs has " + std::to_string(rows) + " rows");
  DeviceTables d;
  d.device = device;
  d.cdfs = download<int32_t>(c.data(), c.size, "copying cdfs");
  d.lengths = download<int32_t>(l.data(), rows, "copying cdf_lengths");
  d.offsets = download<int32_t>(o.data(), rows, "copying offsets");
  codec_rc::Tables host;
  host.cdfs = d.cdfs.data();
  host.n_tables = rows;
  host.stride = c.t->shape[1];
  host.lengths = d.lengths.data();
  host.offsets = d.offsets.data();
  const std::string err = codec_rc::validate_tables(host);
  if (!err.empty()) throw py::value_error(err);
  d.d_cdfs = upload(d.cdfs, "uploading cdfs");
  d.d_lengths = upload(d.lengths, "uploading cdf_lengths");
  d.d_offsets = upload(d.offsets, "uploading offsets");
  d.t = host;
  d.t.cdfs = d.d_cdfs->as<int32_t>();
  d.t.lengths = d.d_lengths->as<int32_t>();
  d.t.offsets = d.d_offsets->as<int32_t>();
  return d;
}

std::vector<int64_t> host_bounds(const py::handle& bounds, int64_t n) {
  if (!py::isinstance<py::array>(bounds)) throw py::type_error("bounds must be a numpy int64 array, got " + type_name(bounds));
  const py::array a = py::reinterpret_borrow<py::array>(bounds);
  if (!a.dtype().equal(py::dtype::of<int64_t>())) throw py::type_error("bounds must have dtype int64, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != 1) throw py::value_error("bounds must be a 1-D array");
  if (!(a.flags() & py::array::c_style)) throw py::value_error("bounds must be C-contiguous");
  const auto* p = static_cast<const int64_t*>(a.data());
  std::vector<int64_t> b(p, p + a.shape(0));
  const std::string err = codec_rc::validate_bounds(b.data(), int64_t(b.size()), n);
  if (!err.empty()) throw py::value_error(err);
  return b;
}

// The message of the lowest-numbered failing substream, or "".
std::string first_fault(const std::vector<Result>& results, const std::vector<int64_t>& bounds) {
  for (size_t j = 0; j < results.size(); ++j) {
    const Result& r = results[j];
    if (r.status == codec_rc::core::kOk) continue;
    std::string m = codec_rc::core::status_name(r.status);
    if (r.status == codec_rc::core::kBadIndex) {
      m = "indexes[" + std::to_string(r.at) + "] is out of range";
    } else if (r.at >= 0) {
      m += (r.status == codec_rc::core::kTruncated ? ": stream ended before symbol " : " at symbol ") + std::to_string(r.at);
      if (r.status == codec_rc::core::kTruncated) m += " of " + std::to_string(bounds[j + 1] - bounds[j]);
    }
    return "substream " + std::to_string(j) + ": elements " + std::to_string(bounds[j]) + ".." + std::to_string(bounds[j + 1]) + ": " + m;
  }
  return {};
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

py::list encode_substreams(const py::handle& symbols, const py::handle& indexes, const py::handle& cdfs, const py::handle& cdf_lengths,
                           const py::handle& offsets, const py::handle& bounds) {
  const DeviceArray sym = device_array(symbols, "symbols", 1);
  const DeviceArray idx = device_array(indexes, "indexes", 1);
  if (sym.device != idx.device) throw py::value_error("all arrays must be on the same CUDA device as indexes");
  if (sym.size != idx.size) {
    throw py::value_error("symbols and indexes must have the same length, got " + std::to_string(sym.size) + " and " + std::to_string(idx.size));
  }
  const std::vector<int64_t> b = host_bounds(bounds, idx.size);
  const DeviceGuard guard(idx.device);
  const DeviceTables tab = tables(cdfs, cdf_lengths, offsets, idx.device);
  const int64_t n_sub = int64_t(b.size()) - 1;
  std::vector<Result> results;
  std::vector<int64_t> starts(size_t(n_sub), 0), sizes(size_t(n_sub), 0);
  std::vector<uint8_t> bytes;
  const std::string err = codec_py::without_gil([&] {
    std::string fault;
    const auto d_bounds = upload(b, "uploading bounds");
    DeviceBuffer d_results(size_t(n_sub) * sizeof(Result), "allocating results");
    const auto* s = static_cast<const int32_t*>(sym.data());
    const auto* i = static_cast<const int32_t*>(idx.data());
    check(codec_cuda::launch_count(s, i, d_bounds->as<int64_t>(), n_sub, tab.t, d_results.as<Result>()), "launching the count kernel");
    results = download<Result>(d_results.p, n_sub, "the count kernel");
    fault = first_fault(results, b);
    if (fault.empty()) {
      int64_t total = 0;
      for (int64_t j = 0; j < n_sub; ++j) {
        starts[size_t(j)] = total;
        sizes[size_t(j)] = results[size_t(j)].bytes;
        total += sizes[size_t(j)];
      }
      DeviceBuffer d_out(size_t(total), "allocating the output");
      const auto d_starts = upload(starts, "uploading offsets");
      const auto d_sizes = upload(sizes, "uploading sizes");
      check(codec_cuda::launch_write(s, i, d_bounds->as<int64_t>(), n_sub, tab.t, d_out.as<uint8_t>(), d_starts->as<int64_t>(),
                                     d_sizes->as<int64_t>(), d_results.as<Result>()),
            "launching the write kernel");
      results = download<Result>(d_results.p, n_sub, "the write kernel");
      for (int64_t j = 0; j < n_sub && fault.empty(); ++j) {
        if (results[size_t(j)].status != codec_rc::core::kOk || results[size_t(j)].bytes != sizes[size_t(j)]) {
          fault = "substream " + std::to_string(j) + ": internal error in the CUDA coder: the write pass disagrees with the count pass";
        }
      }
      bytes = download<uint8_t>(d_out.p, total, "copying the output");
    }
    return fault;
  });
  if (!err.empty()) throw py::value_error(err);
  py::list out;
  for (int64_t j = 0; j < n_sub; ++j) {
    out.append(py::bytes(reinterpret_cast<const char*>(bytes.data()) + starts[size_t(j)], size_t(sizes[size_t(j)])));
  }
  return out;
}

void decode_substreams(const py::handle& strings, const py::handle& indexes, const py::handle& cdfs, const py::handle& cdf_lengths,
                       const py::handle& offsets, const py::handle& bounds, const py::handle& out) {
  if (!py::isinstance<py::sequence>(strings) || py::isinstance<py::bytes>(strings) || py::isinstance<py::str>(strings) ||
      PyByteArray_Check(strings.ptr())) {
    throw py::type_error("strings must be a list of byte strings (one per substream), got " + type_name(strings));
  }
  const DeviceArray idx = device_array(indexes, "indexes", 1);
  const DeviceArray dst = device_array(out, "out", 1);
  if (dst.device != idx.device) throw py::value_error("all arrays must be on the same CUDA device as indexes");
  if (dst.size != idx.size) throw py::value_error("out has " + std::to_string(dst.size) + " values but indexes " + std::to_string(idx.size));
  const std::vector<int64_t> b = host_bounds(bounds, idx.size);
  const int64_t n_sub = int64_t(b.size()) - 1;
  const py::sequence seq = py::reinterpret_borrow<py::sequence>(strings);
  if (int64_t(seq.size()) != n_sub) {
    throw py::value_error("got " + std::to_string(seq.size()) + " substreams but bounds describe " + std::to_string(n_sub));
  }
  std::vector<uint8_t> data;  // the substreams concatenated, sent in one copy
  std::vector<int64_t> starts, sizes;
  for (size_t j = 0; j < seq.size(); ++j) {
    Py_buffer view;
    if (PyObject_GetBuffer(seq[j].ptr(), &view, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error("strings[" + std::to_string(j) + "] must be bytes, bytearray or a contiguous buffer");
    }
    const auto* p = static_cast<const uint8_t*>(view.buf);
    starts.push_back(int64_t(data.size()));
    sizes.push_back(int64_t(view.len));
    data.insert(data.end(), p, p + view.len);
    PyBuffer_Release(&view);
  }
  const DeviceGuard guard(idx.device);
  const DeviceTables tab = tables(cdfs, cdf_lengths, offsets, idx.device);
  const std::string err = codec_py::without_gil([&] {
    std::string fault;
    const auto d_bounds = upload(b, "uploading bounds");
    const auto d_data = upload(data, "uploading the substreams");
    const auto d_starts = upload(starts, "uploading offsets");
    const auto d_sizes = upload(sizes, "uploading sizes");
    DeviceBuffer d_results(size_t(n_sub) * sizeof(Result), "allocating results");
    check(codec_cuda::launch_decode(d_data->as<uint8_t>(), d_starts->as<int64_t>(), d_sizes->as<int64_t>(),
                                    static_cast<const int32_t*>(idx.data()), d_bounds->as<int64_t>(), n_sub, tab.t,
                                    static_cast<int32_t*>(dst.data()), d_results.as<Result>()),
          "launching the decode kernel");
    fault = first_fault(download<Result>(d_results.p, n_sub, "the decode kernel"), b);
    return fault;
  });
  if (!err.empty()) throw py::value_error(err);
}

}  // namespace

PYBIND11_MODULE(_cuda_rangecoder, m) {
  m.doc() = "The range coder's substreams on a CUDA GPU, byte-identical to codec._rangecoder (see docs/rangecoder.md).";
  m.def("encode_substreams", &encode_substreams, py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"),
        py::arg("offsets"), py::arg("bounds"),
        "Encode substream j = values [bounds[j], bounds[j+1]) of CUDA int32 arrays, one GPU thread each; returns a list of bytes.");
  m.def("decode_substreams", &decode_substreams, py::arg("strings"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"),
        py::arg("offsets"), py::arg("bounds"), py::arg("out"), "Decode a list of substreams into the CUDA int32 array out.");
  m.def("device_count", &device_count, "CUDA devices visible (0 without a driver); never raises.");
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  m.attr("CUDA_RUNTIME_VERSION") = runtime;
#ifdef CODEC_CUDA_ARCH
  m.attr("ARCH") = CODEC_CUDA_ARCH;
#else
  m.attr("ARCH") = "";
#endif
}
