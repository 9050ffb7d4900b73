"""Register weakly-annotated COCO-style sets, salient-object folders and COCO panoptic sets with Detectron2."""
import json

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets.coco_panoptic import register_coco_panoptic

from ..coco_weak import load_coco_instances
from ..weak import derive_weak_dataset, to_box_supervision

__all__ = ["register_coco_weak", "register_salient_folder", "register_coco_panoptic_from_json", "register_panoptic_subset",
           "register_semantic_labels", "register_semantic_ground_truth", "register_panoptic_semantic"]


def register_coco_weak(
    name, json_file, image_root, supervision="mask", weak_mode=None, fraction=0.0, seed=0, on_bad="warn"
):
    """
    Register a COCO instances json under ``name`` with a given supervision.

    Args:
        supervision (str): "mask", "box" or "tag": what of the json is kept (see ``load_coco_instances``).
        weak_mode (str or None): optionally derive a weaker set on load (``wsis.data.weak.derive_weak_dataset``),
            e.g. "semi_images" with ``fraction`` 0.1 keeps masks on a seeded 10% of images.
        on_bad (str): "warn" (skip unusable boxes with a summary) or "error".

    Metadata: ``thing_classes``, ``thing_dataset_id_to_contiguous_id``, ``json_file``, ``image_root``,
    ``evaluator_type="coco"``, ``supervision``. Category metadata is read lazily, when the data is loaded.
    """

    def load():
        dicts, meta = load_coco_instances(json_file, image_root, supervision=supervision, on_bad=on_bad)
        md = MetadataCatalog.get(name)
        if not hasattr(md, "thing_classes"):
            md.set(thing_classes=meta["thing_classes"],
                   thing_dataset_id_to_contiguous_id=meta["thing_dataset_id_to_contiguous_id"])
        if weak_mode:
            dicts = derive_weak_dataset(dicts, weak_mode, fraction=fraction, seed=seed)
        return dicts

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type="coco",
        supervision=weak_mode or supervision,
    )


def register_salient_folder(name, image_dir, mask_dir, single_object_only=False, image_ids=None, supervision="mask"):
    """
    Register a salient-object folder (image + binary mask of the same stem, e.g. DUTS-TR, ECSSD) as a one-class
    instance dataset ("salient object"); ``single_object_only`` applies BoxCaseg's DUTS-Single rule, ``image_ids``
    keeps a subset (e.g. a train/held-out split), ``supervision="box"`` drops the masks (box = tight box of the
    salient mask).
    """
    from ..converters import load_salient_folder

    def load():
        dicts = load_salient_folder(image_dir, mask_dir, single_object_only=single_object_only)
        if image_ids is not None:
            keep = set(image_ids)
            dicts = [d for d in dicts if d["image_id"] in keep]
        for d in dicts:
            d.setdefault("supervision", "mask")
            d.setdefault("image_labels", [0] if d["annotations"] else [])
            for a in d["annotations"]:
                a.setdefault("mask_valid", "segmentation" in a)
        return to_box_supervision(dicts) if supervision == "box" else dicts

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        thing_classes=["salient object"], thing_dataset_id_to_contiguous_id={1: 0},
        image_root=image_dir, mask_root=mask_dir, evaluator_type="coco", supervision=supervision,
    )


def register_coco_panoptic_from_json(name, image_root, panoptic_root, panoptic_json):
    """
    Register a COCO panoptic set with Detectron2's standard panoptic loader, deriving its metadata from the json's
    categories the way Detectron2's builtin "coco_panoptic_standard" does (one contiguous id over things and
    stuff, in json order). ``evaluator_type="coco_panoptic_seg"``.
    """
    with open(panoptic_json) as f:
        cats = json.load(f)["categories"]
    names = [c["name"] for c in cats]
    meta = {
        "thing_classes": names,
        "stuff_classes": names,
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats) if c["isthing"]},
        "stuff_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(cats) if not c["isthing"]},
    }
    register_coco_panoptic(name, meta, image_root, panoptic_root, panoptic_json)


def register_panoptic_subset(name, source_name, instances_json):
    """
    Register ``name``: the images of ``instances_json`` (e.g. a half written by ``tools/convert_coco_panoptic.py``)
    with the panoptic ground truth of the registered panoptic set ``source_name`` (``pan_seg_file_name``,
    ``segments_info``) and its metadata, for PQ / AP^r / mIoU of a panoptic model. An image that is not in the
    source is an error naming it.
    """

    def load():
        with open(instances_json) as f:
            ids = [im["id"] for im in json.load(f)["images"]]
        by_id = {d["image_id"]: d for d in DatasetCatalog.get(source_name)}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(f"{instances_json}: image id {missing[0]} is not in {source_name} "
                             f"({len(missing)} missing)")
        return [by_id[i] for i in ids]

    DatasetCatalog.register(name, load)
    meta = {k: v for k, v in MetadataCatalog.get(source_name).as_dict().items() if k != "name"}
    MetadataCatalog.get(name).set(**meta)


def _semantic_metadata(name, source_meta):
    """sem_seg metadata for ``SemSegEvaluator``: background + the source's classes, ignore 255."""
    from ..semantic_labels import semantic_classes

    MetadataCatalog.get(name).set(stuff_classes=semantic_classes(source_meta.thing_classes), ignore_label=255,
                                  evaluator_type="sem_seg", thing_classes=list(source_meta.thing_classes))


def register_semantic_labels(name, source_name, folder, require_all=True):
    """
    Register ``name``: the dicts of the registered ``source_name`` with ``sem_seg_file_name`` =
    ``<folder>/<image_id>.png`` (e.g. semantic pseudo labels from cues; :func:`wsis.data.semantic_labels.
    attach_semantic_labels`), for a ``SemanticSegmentor``. Metadata: ``stuff_classes`` = background + the source's
    ``thing_classes``, ``ignore_label`` 255, ``evaluator_type="sem_seg"``.
    """
    from ..semantic_labels import attach_semantic_labels

    def load():
        dicts = DatasetCatalog.get(source_name)
        _semantic_metadata(name, MetadataCatalog.get(source_name))
        return attach_semantic_labels(dicts, folder, require_all=require_all)

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(evaluator_type="sem_seg", ignore_label=255, label_folder=folder)


def register_semantic_ground_truth(name, source_name, folder):
    """
    Register ``name``: the registered instance set ``source_name`` with true label maps rasterised from its masks
    into ``folder`` on first use (:func:`wsis.data.semantic_labels.write_semantic_ground_truth`; crowd → ignore),
    evaluated by ``SemSegEvaluator`` (``evaluator_type="sem_seg"``).
    """
    from ..semantic_labels import write_semantic_ground_truth

    def load():
        dicts = DatasetCatalog.get(source_name)
        _semantic_metadata(name, MetadataCatalog.get(source_name))
        return write_semantic_ground_truth(dicts, folder)

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(evaluator_type="sem_seg", ignore_label=255, label_folder=folder)


def register_panoptic_semantic(name, panoptic_name, folder):
    """
    Register ``name``: the registered COCO panoptic set ``panoptic_name`` (things + stuff) with true label maps
    written into ``folder`` on first use: contiguous category ``c`` → ``c + 1`` (0, "background", never occurs:
    every labelled pixel is a thing or a stuff class), unlabelled pixels and crowd segments → 255. A model trained on
    things-only maps is scored here against things and stuff (``SemSegEvaluator``).
    """
    import os

    import numpy as np
    from PIL import Image

    from wsis.core.semantic import write_label_png
    from wsis.core.panoptic import panoptic_rgb_to_id

    from ..semantic_labels import attach_semantic_labels, semantic_classes, semantic_from_panoptic

    def load():
        dicts = [dict(d) for d in DatasetCatalog.get(panoptic_name)]
        md = MetadataCatalog.get(panoptic_name)
        names = list(md.stuff_classes)
        to_label = {c: c + 1 for c in range(len(names))}
        for d in dicts:
            path = os.path.join(folder, f"{d['image_id']}.png")
            if not os.path.isfile(path):
                ids = panoptic_rgb_to_id(np.asarray(Image.open(d["pan_seg_file_name"]).convert("RGB")))
                write_label_png(semantic_from_panoptic(ids, d["segments_info"], to_label), path)
        MetadataCatalog.get(name).set(stuff_classes=semantic_classes(names), ignore_label=255,
                                      evaluator_type="sem_seg")
        return attach_semantic_labels(dicts, folder)

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(evaluator_type="sem_seg", ignore_label=255, label_folder=folder)
