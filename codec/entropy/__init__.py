"""Glue between compressai's entropy models (their CDF tables) and our range coder."""
from codec.entropy.coding import (
    decode_bottleneck,
    decode_gaussian,
    encode_bottleneck,
    encode_gaussian,
)

__all__ = ["encode_bottleneck", "decode_bottleneck", "encode_gaussian", "decode_gaussian"]
