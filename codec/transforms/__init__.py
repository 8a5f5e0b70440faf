"""Invertible signal transforms used around the learned autoencoders."""
from codec.transforms.wavelets import WAVELETS, WaveletPacket2D

__all__ = ["WAVELETS", "WaveletPacket2D"]
