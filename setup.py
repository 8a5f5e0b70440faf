"""Build the C++ range coder (csrc/) as codec._rangecoder and, where CUDA is available, the
CUDA coder (csrc/cuda/) as codec._cuda_rangecoder.

CODEC_CUDA: unset = build the CUDA module when nvcc and the CUDA runtime headers are found
(a failure is reported and the CPU build goes on); 1 = build it or fail; 0 = skip it.
CODEC_CUDA_ARCH: compute capabilities, comma-separated (default 90: H100/H200), each built
as SASS, the last also as PTX for later GPUs. CUDA_HOME: the toolkit (default: nvcc's on
PATH, else /usr/local/cuda).
"""
import os
import shutil
import subprocess
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

extra_compile = ["-O3"]
extra_link: list[str] = []
if os.environ.get("CODEC_SANITIZE"):
    # Sanitizer build, used by tools/sanitize_coder.sh.
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"]
    extra_compile = flags
    extra_link = ["-fsanitize=address,undefined"]

def pure_cpp_sources() -> list[str]:
    """csrc/*.cpp without pybind11: the coder library (validation, tables, threads)."""
    return sorted(os.path.join("csrc", f) for f in os.listdir("csrc")
                  if f.endswith(".cpp") and "pybind11" not in open(os.path.join("csrc", f)).read())


HEADERS = sorted(os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".hpp")) + ["csrc/cuda/coder_core.hpp"]
CUDA_MODULE = "codec._cuda_rangecoder"


def cuda_home() -> str | None:
    """The CUDA toolkit with nvcc and cuda_runtime.h, or None."""
    nvcc = shutil.which("nvcc")
    candidates = [os.environ.get("CUDA_HOME"), os.path.dirname(os.path.dirname(nvcc)) if nvcc else None, "/usr/local/cuda"]
    for home in candidates:
        if home and os.path.exists(os.path.join(home, "bin", "nvcc")) and os.path.exists(
                os.path.join(home, "include", "cuda_runtime.h")):
            return home
    return None


class BuildExt(build_ext):
    """build_ext that compiles csrc/cuda/kernels.cu with nvcc for the CUDA module."""

    def build_extension(self, ext):
        if ext.name != CUDA_MODULE:
            return super().build_extension(ext)
        try:
            ext.extra_objects = [self.compile_kernels(ext.cuda_home)]
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001 - re-raised when CODEC_CUDA=1
            if os.environ.get("CODEC_CUDA") == "1":
                raise
            print(f"warning: {CUDA_MODULE} not built ({err}); the CPU coder is unaffected. "
                  "Set CODEC_CUDA=1 to make this an error, CODEC_CUDA=0 to skip it.", file=sys.stderr)

    def compile_kernels(self, home: str) -> str:
        obj = os.path.join(self.build_temp, "csrc", "cuda", "kernels.o")
        os.makedirs(os.path.dirname(obj), exist_ok=True)
        archs = [a.strip() for a in os.environ.get("CODEC_CUDA_ARCH", "90").split(",") if a.strip()]
        gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
        gencode.append(f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}")
        cmd = [os.path.join(home, "bin", "nvcc"), "-std=c++17", "-O3", "-Xcompiler", "-fPIC", *gencode, "-Icsrc",
               "-c", "csrc/cuda/kernels.cu", "-o", obj]
        print(" ".join(cmd))
        subprocess.run(cmd, check=True)
        return obj


ext_modules = [
    Pybind11Extension(
        "codec._rangecoder",
        sorted(os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".cpp")),
        include_dirs=["csrc"],
        depends=HEADERS,
        cxx_std=17,
        extra_compile_args=extra_compile,
        extra_link_args=extra_link,
    )
]

_cuda = os.environ.get("CODEC_CUDA", "0" if os.environ.get("CODEC_SANITIZE") else "")  # sanitizer builds: CPU only
_home = cuda_home() if _cuda != "0" else None
if _cuda == "1" and _home is None:
    sys.exit("CODEC_CUDA=1 but no CUDA toolkit (nvcc and include/cuda_runtime.h) was found; set CUDA_HOME")
if _home is not None:
    _arch = os.environ.get("CODEC_CUDA_ARCH", "90")
    cuda_ext = Pybind11Extension(
        CUDA_MODULE,
        ["csrc/cuda/bindings_cuda.cpp", *pure_cpp_sources()],  # table and bound validation
        include_dirs=["csrc", os.path.join(_home, "include")],
        depends=HEADERS + ["csrc/cuda/kernels.hpp", "csrc/cuda/kernels.cu"],
        cxx_std=17,
        define_macros=[("CODEC_CUDA_ARCH", f'"sm_{_arch}"')],
        extra_compile_args=["-O2"],
        library_dirs=[os.path.join(_home, "lib64"), os.path.join(_home, "lib")],
        # The CUDA runtime linked statically, its symbols kept private: the module needs no
        # libcudart at run time and cannot bind to another one already loaded (torch's).
        libraries=["cudart_static", "rt", "dl", "pthread"],
        extra_link_args=["-Wl,--exclude-libs,ALL"],
    )
    cuda_ext.cuda_home = _home
    ext_modules.append(cuda_ext)

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
