"""
The job of ``tools/make_panoptic_labels.py``: iteration-0 panoptic pseudo labels of a dataset in COCO's panoptic
format (``<out>/<image_id>.png`` with id = R + 256 G + 65536 B, and ``<out>/panoptic.json``), resumable.

Each image's segments are written to ``<out>/segments/<image_id>.json`` before its PNG (both atomically), so an
image is done when its PNG exists and a killed run resumes where it stopped; ``panoptic.json`` is assembled from
them at the end. The folder's ``params.json`` (the box generator's parameters, the cue store's provenance, the
threshold) refuses a resumed run with other settings unless ``overwrite``.
"""
import json
import logging
import multiprocessing as mp
import os

from tqdm import tqdm

from wsis.core.boxes import mask_tight_box
from wsis.core.io import atomic_write_json, atomic_write_png
from wsis.core.panoptic import panoptic_id_to_rgb
from wsis.pseudo.label_folder import claim_label_folder, missing_maps, skip_report_name, write_skip_report
from wsis.pseudo.shards import shard_dicts

from wsis.evaluation.panoptic_quality import PQAccumulator

from .label_folder import read_panoptic_ids
from .pseudo_labels import panoptic_ground_truth, panoptic_pseudo_label

__all__ = ["make_panoptic_labels", "write_panoptic_label", "write_panoptic_json", "label_quality", "QUALITY_KEYS"]

QUALITY_KEYS = ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")

logger = logging.getLogger(__name__)


class _Job:
    def __init__(self, generator, cues, isthing, out_dir, threshold, full_ids):
        self.generator, self.cues, self.isthing = generator, cues, isthing
        self.out_dir, self.threshold, self.full_ids = out_dir, threshold, full_ids

    def __call__(self, d):
        try:
            if d["image_id"] in self.full_ids:  # semi-supervised: this image keeps its true panoptic labels
                ids, segments = panoptic_ground_truth(d)
                segments = [dict(s, isthing=self.isthing[s["category_id"]], area=int((ids == s["id"]).sum()))
                            for s in segments]
            else:
                cues = self.cues[d["image_id"]] if self.cues is not None and d["image_id"] in self.cues else None
                ids, segments = panoptic_pseudo_label(d, self.generator, cues, self.isthing, self.threshold)
        except (OSError, ValueError, KeyError) as e:
            return d["image_id"], f"{d.get('file_name')} (image id {d['image_id']}): {e}"
        write_panoptic_label(self.out_dir, d["image_id"], ids, segments)
        return d["image_id"], None


def write_panoptic_label(out_dir, image_id, ids, segments):
    """
    One image's label into a label folder: ``segments/<image_id>.json`` (with each segment's ``bbox``), then
    ``<image_id>.png``, both atomically, so that an image is done when its PNG exists.
    """
    for s in segments:
        x0, y0, x1, y1 = mask_tight_box(ids == s["id"])
        s["bbox"] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    atomic_write_json(segments, os.path.join(out_dir, "segments", f"{image_id}.json"))
    rgb = panoptic_id_to_rgb(ids)  # R + 256 G + 65536 B; OpenCV writes BGR
    atomic_write_png(rgb[:, :, ::-1], os.path.join(out_dir, f"{image_id}.png"))


def make_panoptic_labels(dataset_dicts, generator, cues, isthing, categories, out_dir, threshold=0.5, workers=1,
                         progress=True, overwrite=False, full_ids=(), num_shards=1, shard_index=0):
    """
    Args:
        dataset_dicts (list[dict]): images with their annotations (thing boxes; stuff annotations are not used).
        generator: box pseudo-mask generator for the things (``WSPSGenerator``; must be picklable for workers > 1).
        cues (CueStore or None): the images' cues (stuff from tags); None: things only.
        isthing (Mapping[int, bool]): contiguous class → thing or stuff.
        categories (list[dict]): the dataset's COCO categories in contiguous order (``id``, ``name``, ``isthing``);
            ``panoptic.json`` uses their ids.
        out_dir (str): the label folder.
        full_ids (iterable[int]): images that keep their true panoptic labels (the json's segments, which they must
            have): WSPS §4's semi-supervised setting, e.g. a seeded fraction (:func:`wsis.data.weak.seeded_image_ids`,
            the images ``semi_images`` keeps masks on). The others get pseudo labels.
        num_shards, shard_index: make only shard ``shard_index`` of ``num_shards`` (:func:`wsis.pseudo.shards.
            shard_dicts`) into the shared folder, e.g. one task of an array job; ``panoptic.json`` lists the images
            done when it ends, so a last call without sharding (nothing left to make) writes the complete one.

    Returns:
        list[tuple]: (image_id, reason) of the images skipped (also in ``<out>/skipped.json``, a shard's in
        ``skipped_shard_<i>_of_<K>.json``).
    """
    if len(categories) < len(isthing):
        raise ValueError(f"{len(categories)} categories for {len(isthing)} classes")
    full_ids = sorted(int(i) for i in full_ids)
    params = {"generator": getattr(generator, "params", repr(generator)), "threshold": float(threshold),
              "cues": getattr(cues, "provenance", None) if cues is not None else None, "full_ids": full_ids}
    claim_label_folder(out_dir, params, overwrite, holds="panoptic labels made with other settings")
    os.makedirs(os.path.join(out_dir, "segments"), exist_ok=True)
    todo = missing_maps(out_dir, shard_dicts(dataset_dicts, num_shards, shard_index))
    job = _Job(generator, cues, isthing, out_dir, threshold, set(full_ids))
    skipped = []
    bar = tqdm(total=len(todo), desc="panoptic labels", unit="img", disable=not progress)
    if workers > 1 and len(todo) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.imap_unordered(job, todo)
            for image_id, reason in results:
                skipped += [(image_id, reason)] if reason else []
                bar.update()
    else:
        for d in todo:
            image_id, reason = job(d)
            skipped += [(image_id, reason)] if reason else []
            bar.update()
    bar.close()
    for _, reason in skipped:
        logger.warning(f"skipped {reason}")
    write_skip_report(out_dir, skipped, skip_report_name(num_shards, shard_index))
    write_panoptic_json(dataset_dicts, categories, out_dir)
    return skipped


def write_panoptic_json(dataset_dicts, categories, out_dir):
    """``<out_dir>/panoptic.json`` from the images of ``dataset_dicts`` whose label is done (COCO's panoptic format,
    ``categories[contiguous]["id"]`` as category ids)."""
    images, annotations = [], []
    for d in sorted(dataset_dicts, key=lambda d: d["image_id"]):
        seg_file = os.path.join(out_dir, "segments", f"{d['image_id']}.json")
        if not os.path.isfile(os.path.join(out_dir, f"{d['image_id']}.png")) or not os.path.isfile(seg_file):
            continue
        with open(seg_file) as f:
            segments = json.load(f)
        images.append({"id": d["image_id"], "file_name": os.path.basename(d["file_name"]), "height": d["height"],
                       "width": d["width"]})
        annotations.append({"image_id": d["image_id"], "file_name": f"{d['image_id']}.png", "segments_info": [
            {"id": s["id"], "category_id": int(categories[s["category_id"]]["id"]), "iscrowd": int(s.get("iscrowd", 0)),
             "bbox": s["bbox"], "area": s["area"]} for s in segments]})
    cats = [{"id": int(c["id"]), "name": c.get("name", str(c["id"])), "isthing": int(bool(c["isthing"]))}
            for c in categories]
    atomic_write_json({"images": images, "annotations": annotations, "categories": cats},
                      os.path.join(out_dir, "panoptic.json"))
    return len(annotations)


def label_quality(out_dir, dataset_dicts, isthing):
    """PQ / SQ / RQ (all, things, stuff) and the void fraction of a label folder's labels against the dicts' own
    segments (:func:`~.pseudo_labels.panoptic_ground_truth`; images without a label are left out)."""
    pq = PQAccumulator({c: int(t) for c, t in isthing.items()})
    void = n = 0
    for d in dataset_dicts:
        png = os.path.join(out_dir, f"{d['image_id']}.png")
        if not os.path.isfile(png):
            continue
        ids = read_panoptic_ids(png)
        with open(os.path.join(out_dir, "segments", f"{d['image_id']}.json")) as f:
            segments = json.load(f)
        pq.add(ids, segments, *panoptic_ground_truth(d))
        void, n = void + float((ids == 0).mean()), n + 1
    res = pq.summarize()
    return dict({k: res[k] for k in QUALITY_KEYS}, void_fraction=void / max(n, 1))
