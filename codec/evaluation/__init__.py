"""Rate–distortion evaluation (``codec eval``): learned models and classical baselines on a dataset.

Modules, one job each: :mod:`~codec.evaluation.metrics` (bpp, PSNR, MS-SSIM),
:mod:`~codec.evaluation.baselines` (Pillow codecs), :mod:`~codec.evaluation.learned`
(models through :mod:`codec.api`), :mod:`~codec.evaluation.datasets` (folders, downloads),
:mod:`~codec.evaluation.store` (resume cache), :mod:`~codec.evaluation.runner` (the grid),
:mod:`~codec.evaluation.bd` (BD-rate), :mod:`~codec.evaluation.report` (outputs) and
:mod:`~codec.evaluation.pipeline` (the whole run). See docs/evaluation.md.
"""
