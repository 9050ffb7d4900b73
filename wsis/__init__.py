"""wsis: weakly-supervised instance and panoptic segmentation on top of Detectron2.

``import wsis`` needs neither detectron2 nor torchvision. The detectron2 glue registers its parts when imported
explicitly: ``import wsis.modeling`` (heads), ``import wsis.data.datasets`` (builtin datasets), ``wsis.engine`` (trainer).
"""

__version__ = "0.2.0"
