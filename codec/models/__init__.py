"""Model families: the WaLLoC-style wavelet autoencoder and the mean-scale hyperprior."""
from codec.models.base import VariableRateModel
from codec.models.hyperprior import MeanScaleHyperprior
from codec.models.walloc import WaLLoC

#: Architecture name -> class; configs name one of these.
ARCHITECTURES = {"walloc": WaLLoC, "hyperprior": MeanScaleHyperprior}

__all__ = ["ARCHITECTURES", "MeanScaleHyperprior", "VariableRateModel", "WaLLoC"]
