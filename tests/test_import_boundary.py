"""The detectron2-free core must import without detectron2 and torchvision (CI has neither)."""
import subprocess
import sys

import torch

from wsis.structures import PerImageField

PURE_MODULES = [
    "wsis", "wsis.config", "wsis.data.coco_weak", "wsis.data.weak", "wsis.data.pseudo_store", "wsis.data.converters",
    "wsis.pseudo", "wsis.evaluation", "wsis.modeling.losses", "wsis.structures", "wsis.utils.visualize",
    "wsis.pseudo.wsps", "wsis.pseudo.job", "wsis.pseudo.proxy_masks", "wsis.modeling.boxcaseg", "wsis.data.boxcaseg_crops",
    "wsis.data.samplers", "wsis.layers",
]

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("detectron2", "torchvision"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
for m in {mods!r}:
    __import__(m)
import wsis.modeling
try:
    wsis.modeling.ProxyMaskRCNNConvUpsampleHead
except ImportError as e:
    assert "needs detectron2" in str(e)
print("ok")
"""


def test_core_imports_without_detectron2_and_torchvision():
    code = BLOCKER.format(mods=PURE_MODULES)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_image_region_mask_indexing():
    region = torch.zeros(4, 5, dtype=torch.bool)
    m = PerImageField(region, 3)
    assert len(m) == 3 and len(m[1]) == 1 and len(m[torch.tensor([True, False, True])]) == 2
    assert len(m[torch.tensor([2, 0, 0, 1])]) == 4 and len(m[1:]) == 2
    assert m[0].tensor is region  # shared, never copied per instance

