"""Latent codecs: how one latent tensor becomes named entropy-coded streams, and back.

In the spirit of compressai's ``latent_codecs``, each codec has one interface:

* ``forward(y, ...)`` (training): ``{"likelihoods": {name: tensor}, "y_hat": tensor}``, with
  additive-noise likelihoods and the quantised latents the synthesis sees;
* ``compress(y, ...)``: ``{"strings": {name: [substreams of image 0, ...]}, "shapes": {name:
  per-image latent shape}, "y_hat": tensor}``;
* ``decompress(strings, shapes, ...)``: ``{"y_hat": tensor}``.

:class:`EntropyBottleneckLatentCodec` (a factorized prior) and
:class:`GaussianConditionalLatentCodec` (a conditional Gaussian) code one latent each;
:class:`HyperpriorLatentCodec` composes them: the hyper-latents ``z`` through the bottleneck,
``y`` under the scales and means predicted from ``z_hat``.
:class:`~codec.latent_codecs.channel_conditional.ChannelConditionalLatentCodec` codes ``y`` in
channel slices, each under parameters from ``z_hat`` and the slices before it (Minnen & Singh
2020). Adding a context model is adding a latent codec. Models (:mod:`codec.models.base`) compose latent codecs and so own the
names and order of the streams their files hold.

:mod:`codec.latent_codecs.integer_parameters` turns an entropy-parameter network (``h_s``, and
the channel-conditional slice transforms; any network of convolutions and LeakyReLUs) into an
exact integer network, so the table indexes and means a decoder derives are the encoder's on
every machine; both composite codecs use it when given one.

The codecs hold references to modules the model owns (its compressai entropy models,
``h_a``, ``h_s``), so the model's state-dict keys, devices and train/eval mode are the
model's own; a codec is cheap to build.
"""
from codec.latent_codecs.base import LatentCodec, Shapes, Strings
from codec.latent_codecs.channel_conditional import ChannelConditionalLatentCodec
from codec.latent_codecs.entropy_bottleneck import EntropyBottleneckLatentCodec
from codec.latent_codecs.gaussian_conditional import GaussianConditionalLatentCodec
from codec.latent_codecs.hyperprior import HyperpriorLatentCodec

__all__ = ["ChannelConditionalLatentCodec", "EntropyBottleneckLatentCodec", "GaussianConditionalLatentCodec", "HyperpriorLatentCodec",
           "LatentCodec", "Shapes", "Strings"]
