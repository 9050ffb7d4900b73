"""Data layer. Detectron2-free: loaders, weak derivation, converters and the pseudo-mask store.
The detectron2 glue (dataset registration, mapper) lives in :mod:`wsis.data.datasets` and :mod:`wsis.data.mapper`.
"""
