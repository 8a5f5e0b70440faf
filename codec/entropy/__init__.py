"""Entropy coding, in one place.

* :mod:`codec.entropy.rangecoder`: our compiled range coder (csrc/), numpy buffers in, bytes out;
* :mod:`codec.entropy.tables`: CDF tables converted and validated once;
* :mod:`codec.entropy.coders`: coder backends chosen by name (``cpu``: the range coder),
  each with the id files record;
* :mod:`codec.entropy.compressai_models`: compressai's entropy models (their CDF tables and
  indexes) coded with a backend; the one place that reads compressai's table buffers.

Importing this package imports compressai's entropy models, layers and ops, and nothing else
of compressai: see :func:`_import_compressai`.
"""
import ast
import importlib
import importlib.util
import sys
import types
import warnings


def _register_compressai() -> bool:
    """Register the ``compressai`` package with its subpackages imported on first use.

    Its ``__init__`` runs except its first statement, ``from compressai import (datasets,
    ..., zoo)``, which becomes a module ``__getattr__`` importing the named subpackage; the
    rest (``__version__``, ``get_entropy_coder``, ...) is needed by the entropy models.
    False, with nothing registered, if the ``__init__`` has not that shape.
    """
    spec = importlib.util.find_spec("compressai")
    if spec is None or spec.submodule_search_locations is None:
        return False
    tree = ast.parse(spec.loader.get_source("compressai"))
    eager = [node for node in tree.body
             if isinstance(node, ast.ImportFrom) and node.module == "compressai" and node.level == 0]
    if len(eager) != 1:
        return False
    lazy = {alias.name for alias in eager[0].names}
    tree.body.remove(eager[0])
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str) -> types.ModuleType:
        if name in lazy:
            return importlib.import_module(f"compressai.{name}")
        raise AttributeError(f"module 'compressai' has no attribute {name!r}")

    package.__getattr__ = __getattr__
    sys.modules["compressai"] = package
    try:
        exec(compile(tree, spec.origin, "exec"), package.__dict__)  # noqa: S102 - compressai's own __init__
    except BaseException:
        del sys.modules["compressai"]
        raise
    return True


def _import_compressai() -> None:
    """Import ``compressai.entropy_models`` (and so ``.ops``, ``._CXX``) without the rest of compressai.

    ``compressai/__init__.py`` imports all its subpackages: torchvision, torch._dynamo,
    torch_geometric, scipy.stats... Unless compressai is already imported, the package is
    registered lean (:func:`_register_compressai`); ``import compressai`` and every subpackage
    keep working in the same process, each imported when first used. ``import scipy.stats``
    at the top of compressai's entropy models is deferred to its one use,
    ``GaussianConditional.update`` (training, export): scipy's own module ``__getattr__``
    imports it when ``scipy.stats`` is first looked up. Should compressai's ``__init__`` take
    another shape, compressai is imported whole, as before: slower, still correct, and
    tests/test_api.py fails.

    ``python -X importtime -c "import codec.api"`` (compressai 1.2.8, torch 2.14, 2 cores, one
    busy; 3 runs): 8.1-8.9 s with compressai whole, 3.0-3.3 s lean, torch itself being ~3 s.
    """
    if "compressai" not in sys.modules and not _register_compressai():
        import compressai  # noqa: F401
    if "compressai.entropy_models" in sys.modules:
        return
    import scipy

    defer_stats = "scipy.stats" not in sys.modules and "__getattr__" in vars(scipy)  # its lazy submodules
    if defer_stats:
        sys.modules["scipy.stats"] = types.ModuleType("scipy.stats")  # stand-in during the import below
    try:
        import compressai.entropy_models  # noqa: F401
    finally:
        if defer_stats:
            del sys.modules["scipy.stats"]
            scipy.__dict__.pop("stats", None)


# compressai's import calls torch.jit.script, which recent torch flags as deprecated: a
# notice for compressai's developers, not for the users of this package.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    _import_compressai()

from codec.entropy.coders import DEFAULT_CODER, coder_name, get_coder  # noqa: E402
from codec.entropy.compressai_models import (  # noqa: E402
    bottleneck_values,
    decode_bottleneck,
    decode_bottleneck_symbols,
    decode_gaussian,
    encode_bottleneck,
    encode_gaussian,
    entropy_tables,
)

__all__ = ["DEFAULT_CODER", "bottleneck_values", "coder_name", "decode_bottleneck", "decode_bottleneck_symbols",
           "decode_gaussian", "encode_bottleneck", "encode_gaussian", "entropy_tables", "get_coder"]
