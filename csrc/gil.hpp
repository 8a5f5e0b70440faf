// Running C++ work with the GIL released, safely even while the interpreter shuts down.
//
// pybind11's gil_scoped_release takes the GIL back in its destructor. When a daemon thread
// does that while the interpreter is finalising, CPython ends the thread with pthread_exit,
// whose forced unwinding cannot leave a destructor (destructors are noexcept): the runtime
// calls std::terminate and the whole process aborts as it exits. without_gil takes the GIL
// back in ordinary control flow instead, so that unwinding passes through this frame (and
// through pybind11's dispatcher, which rethrows it) like through any other, and the process
// exits normally.
#pragma once

#include <Python.h>

#include <exception>

namespace codec_py {

// Calls work() with the GIL released and returns its result; an exception thrown by work()
// is rethrown once the GIL is held again. Precondition: the calling thread holds the GIL,
// and work() touches no Python object.
template <class Work>
auto without_gil(Work&& work) -> decltype(work()) {
  PyThreadState* const state = PyEval_SaveThread();
  std::exception_ptr error;
  decltype(work()) result{};
  try {
    result = work();
  } catch (...) {
    error = std::current_exception();
  }
  PyEval_RestoreThread(state);  // at shutdown this may end the thread: see above
  if (error) std::rethrow_exception(error);
  return result;
}

}  // namespace codec_py
