"""Synthetic benchmark sets built from real data (detectron2-free).

:mod:`wsis.data.synthetic.copy_paste` builds the controlled copy-paste set on which the image-tag methods are
measured: real instance cut-outs with their exact masks pasted onto real backgrounds by a seeded generator
(``python tools/make_copy_paste.py``). A controlled benchmark, never a substitute for VOC/COCO figures.
"""
from .copy_paste import SPLITS, CopyPasteConfig, build_copy_paste, compose_image
from .pools import Background, CopyPasteError, Cutout, choose_classes, largest_free_square

__all__ = ["SPLITS", "CopyPasteConfig", "CopyPasteError", "build_copy_paste", "compose_image", "Background", "Cutout",
           "choose_classes", "largest_free_square"]
