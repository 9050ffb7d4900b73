"""
The import boundary (DESIGN.md, "The boundary" and "Layout"): which modules are pure and which are glue, the layers
the packages form, and what one import loads. Pure modules import neither detectron2 nor torchvision nor any glue
module, so CI (which has neither) tests them completely.
"""
import ast
import pathlib
import subprocess
import sys

import pytest
import torch

import wsis
from wsis.core.fields import PerImageField

ROOT = pathlib.Path(wsis.__file__).parent

#: Modules that import detectron2 when imported (registered heads, mappers, evaluators, the trainer).
GLUE = {
    "wsis.data.build", "wsis.data.mapper", "wsis.data.datasets", "wsis.data.datasets.builtin",
    "wsis.data.datasets.register",
    "wsis.evaluation.evaluators",
    "wsis.engine", "wsis.engine.loaders", "wsis.engine.trainer", "wsis.engine.checkpoint",
    "wsis.methods.proxy_mask_rcnn.roi_heads",
    "wsis.methods.bbtp.roi_heads", "wsis.methods.bbtp.meta_arch",
    "wsis.methods.boxcaseg.meta_arch", "wsis.methods.boxcaseg.mapper", "wsis.methods.boxcaseg.loaders",
    "wsis.methods.boxcaseg.evaluator",
    "wsis.methods.cam.meta_arch", "wsis.methods.cam.loaders", "wsis.methods.cam.sem_seg_head",
    "wsis.methods.irnet.meta_arch",
    "wsis.methods.dsrg.head", "wsis.methods.dsrg.meta_arch", "wsis.methods.dsrg.final_labels",
    "wsis.methods.panoptic.meta_arch", "wsis.methods.panoptic.psp_head", "wsis.methods.panoptic.mapper",
    "wsis.methods.panoptic.loaders", "wsis.methods.panoptic.round_job",
    "wsis.methods.ccgr.roi_heads", "wsis.methods.ccgr.mapper", "wsis.methods.ccgr.loaders",
    "wsis.cli.train_net",
}
#: Pure at import, detectron2 only inside a function that runs in a detectron2 setting.
LAZY_GLUE = {
    "wsis.core.fields",  # crop_and_resize uses detectron2's ROIAlign (called by the mask heads)
    "wsis.pseudo.job",  # run_distributed_job, under detectron2's launch
    "wsis.pseudo.network",  # the base of generators that build a detectron2 model when they run
    "wsis.cli.make_pseudo_masks",  # detectron2's get_cfg (boxcaseg) and launch (--num-gpus)
    "wsis.cli.make_cues",  # detectron2's get_cfg (the classifier's config) and launch (--num-gpus)
    "wsis.cli.make_dsrg_labels",  # detectron2's get_cfg, build_model and checkpointer
    "wsis.cli.make_saliency",  # detectron2's get_cfg (the BoxCaseg model's config)
    "wsis.cli.wsps_panoptic_round",  # detectron2's config, model, checkpointer and launch
    "wsis.cli.infer_train_set",  # detectron2's config, checkpointer and inference_on_dataset
    "wsis.cli.ccgr_iteration",  # detectron2's catalogs and logger (the stages are other commands)
    "wsis.checkpoint.path_handler",  # the wsis:// handler also goes on detectron2's PathManager, where installed
    "wsis.model_zoo",  # get_config / get build detectron2 configs and models
}
#: Imports every glue module when detectron2 is installed (by importlib), nothing of it without.
REGISTRATION = {"wsis.modeling"}
#: Package layers: a package imports only packages of a lower layer (methods: also other methods' pure modules).
LAYERS = {"core": 0, "data": 1, "evaluation": 1, "checkpoint": 2, "pseudo": 3, "engine": 3, "methods": 4, "config": 5,
          "modeling": 5, "model_zoo": 6, "cli": 7}


def _name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name, top_level_only):
    """The wsis modules ``name`` imports (``from pkg import module`` resolved to the module)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return {m for m in out if m in MODULES}


def _external(name, top_level_only):
    tree = ast.parse(MODULES[name].read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def _package(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "wsis"


def _glue_closure():
    """Modules importing detectron2 at import time, directly or through another wsis module."""
    glue = {n for n in MODULES if "detectron2" in _external(n, top_level_only=True)}
    while True:
        more = {n for n in MODULES if n not in glue and _imports(n, top_level_only=True) & glue}
        if not more:
            return glue
        glue |= more


def test_the_listing_names_real_modules():
    assert GLUE <= set(MODULES) and LAZY_GLUE <= set(MODULES) and REGISTRATION <= set(MODULES)
    glue = _glue_closure()
    assert glue == GLUE, f"unlisted glue {sorted(glue - GLUE)}, listed but pure {sorted(GLUE - glue)}"
    for name in set(MODULES) - REGISTRATION:
        lazily = "detectron2" in _external(name, top_level_only=False) and name not in GLUE
        assert lazily == (name in LAZY_GLUE), f"{name}: lazy detectron2 import not listed (or listed, not made)"


def test_pure_modules_import_no_glue_module():
    for name in sorted(set(MODULES) - GLUE):
        assert "torchvision" not in _external(name, top_level_only=True), name
        glue = _imports(name, top_level_only=True) & GLUE
        assert not glue, f"pure module {name} imports glue {sorted(glue)}"


def test_packages_form_layers_without_cycles():
    edges = set()
    for name in MODULES:
        for target in _imports(name, top_level_only=False):
            a, b = _package(name), _package(target)
            if a != b and b != "wsis" and a != "wsis":
                edges.add((a, b))
                assert LAYERS[a] > LAYERS[b], f"{name} ({a}) imports {target} ({b}): against the layers"
    # methods: one may use another's pure modules, never its glue; and no cycle among them
    method_edges = set()
    for name in MODULES:
        if name.startswith("wsis.methods.") and name.count(".") >= 3:
            for target in _imports(name, top_level_only=False):
                me, other = name.split(".")[2], target.split(".")[2] if target.startswith("wsis.methods.") else None
                if other and other != me and target.count(".") >= 3:
                    assert target not in GLUE, f"{name} uses {target}, another method's glue"
                    method_edges.add((me, other))
    assert not {(b, a) for a, b in method_edges} & method_edges, method_edges


def test_no_module_over_400_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items() if len(p.read_text().splitlines()) > 400}
    assert not long, long


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("detectron2", "torchvision"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
"""


def _run(code):
    out = subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_every_pure_module_imports_without_detectron2_and_torchvision():
    pure = sorted(set(MODULES) - GLUE)
    code = f"""
for m in {pure!r}:
    __import__(m)
import wsis.modeling
try:
    wsis.modeling.ProxyMaskRCNNConvUpsampleHead
except ImportError as e:
    assert "needs detectron2" in str(e)
print("ok")
"""
    assert _run(code) == "ok"


@pytest.mark.parametrize("module, expected", [
    ("wsis.methods.boxcaseg.crops", {"wsis.core.boxes"}),
    ("wsis.methods.bbtp.losses", set()),
    ("wsis.core.masks", set()),
    ("wsis.methods.wsps.fusion", {"wsis.core.merge"}),
])
def test_one_pure_helper_loads_only_what_it_needs(module, expected):
    code = f"""
import sys
import {module}
print(sorted(m for m in sys.modules if m.startswith("wsis")))
"""
    loaded = set(eval(_run(code)))
    parents = {".".join(m.split(".")[:i]) for m in expected | {module} for i in range(1, m.count(".") + 1)}
    assert loaded == expected | {module} | parents


def test_image_region_mask_indexing():
    region = torch.zeros(4, 5, dtype=torch.bool)
    m = PerImageField(region, 3)
    assert len(m[1]) == 1 and len(m[torch.tensor([True, False, True])]) == 2
    assert len(m[torch.tensor([2, 0, 0, 1])]) == 4 and len(m[1:]) == 2
    assert m[0].tensor is region  # shared, never copied per instance
