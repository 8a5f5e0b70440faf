"""Build the C++ range coder (csrc/) as the extension module codec._rangecoder."""
import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

extra_compile = ["-O3"]
extra_link: list[str] = []
if os.environ.get("CODEC_SANITIZE"):
    # Sanitizer build, used by tools/sanitize_coder.sh.
    flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"]
    extra_compile = flags
    extra_link = ["-fsanitize=address,undefined"]

setup(
    ext_modules=[
        Pybind11Extension(
            "codec._rangecoder",
            sorted(os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".cpp")),
            include_dirs=["csrc"],
            cxx_std=17,
            extra_compile_args=extra_compile,
            extra_link_args=extra_link,
        )
    ],
    cmdclass={"build_ext": build_ext},
)
