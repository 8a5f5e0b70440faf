"""Model families: the WaLLoC-style wavelet autoencoder (with a hyperprior or a channel-conditional
entropy model) and the mean-scale hyperprior."""
from codec.models.base import VariableRateModel
from codec.models.hyperprior import MeanScaleHyperprior
from codec.models.walloc import WaLLoC
from codec.models.walloc_cc import ChannelConditionalWaLLoC

#: Architecture name -> class; configs name one of these.
ARCHITECTURES = {"walloc": WaLLoC, "walloc-cc": ChannelConditionalWaLLoC, "hyperprior": MeanScaleHyperprior}

__all__ = ["ARCHITECTURES", "ChannelConditionalWaLLoC", "MeanScaleHyperprior", "VariableRateModel", "WaLLoC"]
