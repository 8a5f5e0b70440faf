"""Classical codecs through Pillow: encode in memory, decode from the bytes.

Every baseline maps a "quality" number of its own scale to Pillow save options; the exact
parameters are listed in ``docs/evaluation.md`` and in each curve's description.
"""
from __future__ import annotations

import importlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codec.errors import InputError

if TYPE_CHECKING:  # numpy and Pillow load when a codec runs, not when `codec --help` lists the names
    import numpy as np


class MissingPluginError(InputError):
    """A baseline cannot run here: its Pillow plugin is not installed, or Pillow was built without it."""


@dataclass(frozen=True)
class Baseline:
    """One classical codec: how a quality value becomes Pillow ``save`` options."""

    name: str
    format: str
    description: str
    quality_range: tuple[float, float]
    default_qualities: tuple[float, ...]
    options: Callable[[float], dict[str, Any]]
    quality_label: str = "quality"

    def unavailable_reason(self) -> str | None:
        """Why this codec cannot run here (plugin not installed, Pillow built without it), or None."""
        if self.format in PLUGINS:
            module, distribution = PLUGINS[self.format]
            try:
                importlib.import_module(module)
            except ImportError:
                return f"{distribution} is not installed"
        if self.format in FEATURES:
            import warnings

            import PIL
            from PIL import features

            with warnings.catch_warnings():  # an older Pillow warns about features it does not know
                warnings.simplefilter("ignore")
                supported = features.check(FEATURES[self.format])
            if not supported:
                return f"Pillow {PIL.__version__} was built without {FEATURES[self.format]} support"
        return None

    def require(self) -> None:
        """Raise MissingPluginError (a one-line CLI error) when the codec cannot run here."""
        reason = self.unavailable_reason()
        if reason is not None:
            install = f"`pip install {PLUGINS[self.format][1]}`, or " if self.format in PLUGINS else ""
            raise MissingPluginError(f"baseline {self.name} is not available: {reason}; {install}leave "
                                     f"{self.name} out of --baselines")

    def check_quality(self, quality: float) -> None:
        """Raise InputError when ``quality`` is outside this codec's range."""
        low, high = self.quality_range
        if not low <= quality <= high:
            raise InputError(f"{self.name}: {self.quality_label} {quality:g} outside {low:g}..{high:g}")

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Compress an HxWx3 uint8 array into the bytes of a complete file."""
        from PIL import Image

        _register_plugins(self.format)
        buffer = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buffer, format=self.format, **self.options(quality))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decode a file's bytes into an HxWx3 uint8 RGB array."""
        import numpy as np
        from PIL import Image

        _register_plugins(self.format)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return np.asarray(image.convert("RGB"))

    @property
    def settings(self) -> str:
        """A string identifying the codec settings and library versions (part of cache keys)."""
        return f"{self.name}|{self.description}|{library_version(self.format)}"


#: Pillow plugins that are separate packages: format -> (module to import, pip distribution name).
PLUGINS: dict[str, tuple[str, str]] = {"JXL": ("pillow_jxl", "pillow-jxl-plugin")}
#: Codecs built into Pillow: format -> ``PIL.features`` name.
FEATURES: dict[str, str] = {"JPEG": "jpg", "WEBP": "webp", "JPEG2000": "jpg_2000", "AVIF": "avif"}


def _register_plugins(fmt: str) -> None:
    if fmt in PLUGINS:
        module, distribution = PLUGINS[fmt]
        try:
            importlib.import_module(module)  # importing it registers the plugin with Pillow
        except ImportError:
            raise MissingPluginError(f"{fmt} needs {distribution}, which is not installed "
                                     f"(`pip install {distribution}`)") from None


def library_version(fmt: str) -> str:
    """Pillow's version plus the version of the library behind ``fmt`` (never raises)."""
    import PIL
    from PIL import features

    if fmt in PLUGINS:
        from importlib.metadata import PackageNotFoundError, version

        module, distribution = PLUGINS[fmt]
        try:
            plugin_version = version(distribution)
        except PackageNotFoundError:  # importable without package metadata (e.g. a source checkout)
            try:
                plugin_version = getattr(importlib.import_module(module), "__version__", "version unknown")
            except ImportError:
                plugin_version = "not installed"
        return f"Pillow {PIL.__version__}, {distribution} {plugin_version}"
    feature = FEATURES[fmt]
    return f"Pillow {PIL.__version__}, {feature} {features.version(feature)}"


def _jpeg(subsampling: int) -> Callable[[float], dict[str, Any]]:
    return lambda q: {"quality": int(q), "subsampling": subsampling, "optimize": True}


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("jpeg", "JPEG", "JPEG (libjpeg-turbo) 4:2:0, Pillow quality=q, subsampling=2, optimize=True",
                 (1, 100), (4, 8, 15, 25, 40, 60, 75, 85), _jpeg(2)),
        Baseline("jpeg444", "JPEG", "JPEG (libjpeg-turbo) 4:4:4, Pillow quality=q, subsampling=0, optimize=True",
                 (1, 100), (4, 8, 15, 25, 40, 60, 75, 85), _jpeg(0)),
        Baseline("webp", "WEBP", "WebP (libwebp) lossy, Pillow quality=q, method=6",
                 (0, 100), (0, 5, 15, 30, 50, 65, 80, 90),
                 lambda q: {"quality": int(q), "method": 6, "lossless": False}),
        Baseline("jpeg2000", "JPEG2000",
                 "JPEG 2000 (OpenJPEG) JP2, irreversible 9/7, mct=1, quality_mode='rates', quality_layers=[r] "
                 "(r = compression ratio vs 24-bit RGB)",
                 (1, 1000), (12, 18, 27, 40, 60, 90, 135, 200),
                 lambda r: {"irreversible": True, "mct": 1, "quality_mode": "rates", "quality_layers": [float(r)]},
                 quality_label="compression ratio"),
        Baseline("avif", "AVIF", "AVIF (libavif) 4:4:4, Pillow quality=q, subsampling='4:4:4', speed=6",
                 (0, 100), (8, 20, 35, 45, 55, 65, 75, 82),
                 lambda q: {"quality": int(q), "subsampling": "4:4:4", "speed": 6}),
        Baseline("jxl", "JXL", "JPEG XL (libjxl via pillow-jxl-plugin), lossless=False, quality=q, effort=7",
                 (0, 100), (0, 10, 25, 45, 65, 78, 86, 90),
                 lambda q: {"lossless": False, "quality": int(q), "effort": 7}),
    )
}


def get_baseline(name: str) -> Baseline:
    """The baseline called ``name``; InputError listing the known ones otherwise."""
    if name not in BASELINES:
        raise InputError(f"unknown baseline {name!r}; available: {', '.join(BASELINES)}")
    return BASELINES[name]


def available_baselines() -> tuple[list[str], list[tuple[str, str]]]:
    """(names of the baselines that can run here, (name, reason) of those that cannot)."""
    usable: list[str] = []
    missing: list[tuple[str, str]] = []
    for name, baseline in BASELINES.items():
        reason = baseline.unavailable_reason()
        if reason is None:
            usable.append(name)
        else:
            missing.append((name, reason))
    return usable, missing
