"""
Builtin datasets on the small real sets of ``$WSIS_DATASETS`` (default ``./datasets``; point it at the shared data
folder, e.g. ``export WSIS_DATASETS=../shared/data``), registered lazily like Detectron2's builtin ones:

==========================  =====================================================================
name                        content
==========================  =====================================================================
coco_tiny_train / _val      80 + 80 COCO 2017 images, full masks (evaluation ground truth)
coco_tiny_train_box         the train images with boxes only (masks dropped)
coco_tiny_train_tag         the train images with image-level tags only
coco_tiny_train_semi50      masks on a seeded 50% of the train images, boxes on the rest
coco_tiny_val_box           the val images with boxes only (input of pseudo-mask quality runs)
coco_tiny_train|val_sem_seg the images with true semantic maps rasterised from their masks (0 background, class + 1,
                            crowd 255) into $WSIS_CACHE/sem_seg (default ~/.cache/wsis) on first use
copy_paste_train / _val     the controlled copy-paste set of tools/make_copy_paste.py in $WSIS_COPY_PASTE (default
copy_paste_train_tag        datasets/copy_paste_coco_tiny): masks; tags only; true semantic maps (its semantic/ PNGs)
copy_paste_train|val_sem_seg
coco_panoptic_val100        100 COCO val2017 images with panoptic ground truth (80 things + 53 stuff)
coco_panoptic_val100_sem_seg  the same as true semantic maps of things + stuff (contiguous + 1; void 255), written
                            into $WSIS_CACHE/sem_seg on first use
coco_panoptic_halves_train  coco_panoptic_val100 in halves by sorted image id (first 50 train, last 50 val), every
coco_panoptic_halves_val    panoptic segment (80 things + 53 stuff) an instance, with masks: written by
                            tools/convert_coco_panoptic.py into $WSIS_PANOPTIC_HALVES (default
                            datasets/coco_panoptic_val100_halves)
coco_panoptic_halves_train_tag  the train half with tags only (things + stuff)
coco_panoptic_halves_train|val_sem_seg  true semantic maps (its semantic/ PNGs: contiguous + 1, void and crowd 255)
coco_panoptic_halves_train_box  the train half with boxes only (things and stuff segments' boxes)
coco_panoptic_halves_train|val_panoptic  the halves' images with coco_panoptic_val100's true panoptic PNGs (PQ)
ecssd / ecssd_single        ECSSD salient objects (1000 images) / its single-object images
ecssd_train / ecssd_val     images 1-800 / 801-1000 (BoxCaseg's salient set and hold-out)
ecssd_train_box             images 1-800, boxes only (tight box of the salient mask)
voc_2012_train_aug_seg|_box $WSIS_DATASETS/voc/voc_2012_train_aug.json from tools/convert_voc_sbd.py, images in
voc_2012_val_seg            $WSIS_DATASETS/voc/JPEGImages (full masks; _box: boxes only; _tag: tags only)
voc_2012_val_sem_seg        the val images with true semantic maps rasterised from their masks (as coco_tiny's)
coco_2017_train_box         Detectron2's coco_2017_train layout ($WSIS_DATASETS/coco), boxes only
duts_tr_single              DUTS-TR ($WSIS_DATASETS/DUTS-TR/DUTS-TR-Image, .../DUTS-TR-Mask), single-object images
                            (BoxCaseg's DUTS-Single rule, wsis.data.converters.salient)
==========================  =====================================================================
"""
import os

from .register import (
    register_coco_panoptic_from_json,
    register_panoptic_subset,
    register_coco_weak,
    register_panoptic_semantic,
    register_salient_folder,
    register_semantic_ground_truth,
    register_semantic_labels,
)


def _root():
    return os.path.expanduser(os.environ.get("WSIS_DATASETS", "datasets"))


def register_all_coco_tiny(root):
    ann = os.path.join(root, "coco_tiny", "annotations", "instances_{}2017.json")
    img = os.path.join(root, "coco_tiny", "{}2017")
    for split in ("train", "val"):
        register_coco_weak(f"coco_tiny_{split}", ann.format(split), img.format(split))
        register_coco_weak(f"coco_tiny_{split}_box", ann.format(split), img.format(split), supervision="box")
    register_coco_weak("coco_tiny_train_tag", ann.format("train"), img.format("train"), supervision="tag")
    register_coco_weak(
        "coco_tiny_train_semi50", ann.format("train"), img.format("train"), weak_mode="semi_images", fraction=0.5
    )
    for split in ("train", "val"):
        register_semantic_ground_truth(f"coco_tiny_{split}_sem_seg", f"coco_tiny_{split}",
                                       os.path.join(_cache(), "sem_seg", f"coco_tiny_{split}"))


def register_split_instance_set(root, prefix):
    """
    A set in the layout ``annotations/instances_{train,val}.json``, ``{train,val}/`` (images) and
    ``semantic/{train,val}/<image_id>.png`` (true label maps): ``<prefix>_train`` / ``_val`` (masks),
    ``<prefix>_train_tag`` (tags only), ``<prefix>_train_sem_seg`` / ``_val_sem_seg`` (the semantic PNGs).
    """
    for split in ("train", "val"):
        ann, images = os.path.join(root, "annotations", f"instances_{split}.json"), os.path.join(root, split)
        register_coco_weak(f"{prefix}_{split}", ann, images)
        register_semantic_labels(f"{prefix}_{split}_sem_seg", f"{prefix}_{split}",
                                 os.path.join(root, "semantic", split))
    register_coco_weak(f"{prefix}_train_tag", os.path.join(root, "annotations", "instances_train.json"),
                       os.path.join(root, "train"), supervision="tag")


def register_copy_paste(root, prefix="copy_paste"):
    """The copy-paste set written by ``tools/make_copy_paste.py --out root`` (wsis.data.synthetic)."""
    register_split_instance_set(root, prefix)


def register_coco_panoptic_halves(root, prefix="coco_panoptic_halves"):
    """The things + stuff halves written by ``tools/convert_coco_panoptic.py --out root``
    (wsis.data.converters.panoptic_halves), and the train half with boxes only (``<prefix>_train_box``)."""
    register_split_instance_set(root, prefix)
    register_coco_weak(f"{prefix}_train_box", os.path.join(root, "annotations", "instances_train.json"),
                       os.path.join(root, "train"), supervision="box")


def register_coco_panoptic_halves_ground_truth(root, prefix="coco_panoptic_halves"):
    """``<prefix>_{train,val}_panoptic``: the halves' images with coco_panoptic_val100's true panoptic labels."""
    for split in ("train", "val"):
        register_panoptic_subset(f"{prefix}_{split}_panoptic", "coco_panoptic_val100",
                                 os.path.join(root, "annotations", f"instances_{split}.json"))


def register_all_coco_panoptic_val100(root):
    base = os.path.join(root, "coco_panoptic_val100")
    register_coco_panoptic_from_json(
        "coco_panoptic_val100",
        os.path.join(base, "images"),
        os.path.join(base, "annotations", "panoptic_val2017"),
        os.path.join(base, "annotations", "panoptic_val2017.json"),
    )
    register_panoptic_semantic("coco_panoptic_val100_sem_seg", "coco_panoptic_val100",
                               os.path.join(_cache(), "sem_seg", "coco_panoptic_val100"))


def _cache():
    return os.path.expanduser(os.environ.get("WSIS_CACHE", os.path.join("~", ".cache", "wsis")))


def register_all_ecssd(root):
    images, masks = os.path.join(root, "ecssd", "images"), os.path.join(root, "ecssd", "masks")
    register_salient_folder("ecssd", images, masks)
    register_salient_folder("ecssd_single", images, masks, single_object_only=True)
    register_salient_folder("ecssd_train", images, masks, image_ids=range(1, 801))
    register_salient_folder("ecssd_val", images, masks, image_ids=range(801, 1001))
    register_salient_folder("ecssd_train_box", images, masks, image_ids=range(1, 801), supervision="box")


def register_all_voc(root):
    base = os.path.join(root, "voc")
    images = os.path.join(base, "JPEGImages")
    ann = os.path.join(base, "voc_2012_{}.json")
    register_coco_weak("voc_2012_train_aug_seg", ann.format("train_aug"), images)
    register_coco_weak("voc_2012_train_aug_box", ann.format("train_aug"), images, supervision="box")
    register_coco_weak("voc_2012_val_seg", ann.format("val"), images)
    register_coco_weak("voc_2012_train_aug_tag", ann.format("train_aug"), images, supervision="tag")
    register_semantic_ground_truth("voc_2012_val_sem_seg", "voc_2012_val_seg",
                                   os.path.join(_cache(), "sem_seg", "voc_2012_val"))


def register_coco_2017_box(root):
    base = os.path.join(root, "coco")
    register_coco_weak("coco_2017_train_box", os.path.join(base, "annotations", "instances_train2017.json"),
                       os.path.join(base, "train2017"), supervision="box")


def register_duts(root):
    base = os.path.join(root, "DUTS-TR")
    register_salient_folder("duts_tr_single", os.path.join(base, "DUTS-TR-Image"), os.path.join(base, "DUTS-TR-Mask"),
                            single_object_only=True)


_root_dir = _root()
register_all_coco_tiny(_root_dir)
register_copy_paste(os.path.expanduser(os.environ.get("WSIS_COPY_PASTE", os.path.join("datasets", "copy_paste_coco_tiny"))))
_halves = os.path.expanduser(os.environ.get("WSIS_PANOPTIC_HALVES", os.path.join(
    "datasets", "coco_panoptic_val100_halves")))
register_coco_panoptic_halves(_halves)
if os.path.isfile(os.path.join(_root_dir, "coco_panoptic_val100", "annotations", "panoptic_val2017.json")):
    # Detectron2's panoptic registration reads nothing, but our metadata needs the json's categories.
    register_all_coco_panoptic_val100(_root_dir)
    register_coco_panoptic_halves_ground_truth(_halves)
register_all_ecssd(_root_dir)
register_all_voc(_root_dir)
register_coco_2017_box(_root_dir)
register_duts(_root_dir)
