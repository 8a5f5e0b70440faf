"""Entropy coding, in one place.

* :mod:`codec.entropy.rangecoder`: our compiled range coder (csrc/), numpy buffers in, bytes out;
* :mod:`codec.entropy.compressai_models`: compressai's entropy models (their CDF tables and
  indexes) coded with it.
"""
import warnings

# compressai's import calls torch.jit.script, which recent torch flags as deprecated: a
# notice for compressai's developers, not for the users of this package.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    import compressai.entropy_models  # noqa: F401

from codec.entropy.compressai_models import (
    decode_bottleneck,
    decode_gaussian,
    encode_bottleneck,
    encode_gaussian,
)

__all__ = ["encode_bottleneck", "decode_bottleneck", "encode_gaussian", "decode_gaussian"]
