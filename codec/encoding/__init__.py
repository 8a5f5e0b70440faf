"""Encoder-side choices that leave the decoder and the file format unchanged (rate control)."""
