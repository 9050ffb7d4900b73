#!/usr/bin/env python
"""
WSPS's instance CRF (wsis.methods.panoptic.instance_crf): the local-window mean-field against pydensecrf, on real
coco_panoptic_val100 images with the same unaries and kernels (issue 16's mean-field targets: MAP agreement ≥ 97 %,
CPU time ≤ pydensecrf's, memory linear in labels × pixels).

    python benchmarks/bench_instance_crf.py [--images 20] [--stride 4] [--json output/bench_instance_crf.json]

Per image: a synthetic semantic output Q (the true panoptic classes as 0.6 one-hot + 0.4 noise, smoothed, softmax-
normalised; seeded), the true thing boxes as detections (±10 % jitter, scores U(0.5, 1); seeded) plus one dummy
detection per stuff class present; unary −ln(w1 ψ_Box + w2 ψ_Global + ε) (w1 = w2 = 1) at full resolution.
Reference: pydensecrf on the full-resolution image with those unaries (``wsis.core.crf.dense_crf``, symmetric
normalisation, Potts, WSPS's weights 3 / 4, θγ 3, θα 49, θβ 5, 3 iterations). wsis: the same CRF by
:func:`wsis.core.meanfield.coarse_to_fine_mean_field` (steps on the map at ``--stride`` with a ``--window`` window,
the last one at full resolution). Agreement: fraction of pixels with the same arg max. Time: one
thread each. Memory: the peak resident memory of a fresh process while it runs only the local CRF, above its
resident memory before (Linux: /proc/self/clear_refs resets the peak), minus the same for a process that computes
nothing; for 5, 20 and 50 labels at two image sizes.
"""
import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from wsis.core.crf import DenseCRFParams, dense_crf  # noqa: E402
from wsis.core.meanfield import coarse_to_fine_mean_field  # noqa: E402
from wsis.core.panoptic import panoptic_rgb_to_id  # noqa: E402
from wsis.methods.panoptic.instance_crf import WSPS_INSTANCE_CRF, detection_labels, detection_unary  # noqa: E402

DATA = os.path.join(REPO, "..", "shared", "data", "coco_panoptic_val100")
REFERENCE = DenseCRFParams(iterations=WSPS_INSTANCE_CRF.iterations, bilateral_weight=4.0, bilateral_xy_std=49.0,
                           bilateral_rgb_std=5.0, gaussian_weight=3.0, gaussian_xy_std=3.0)


def load_image(entry, categories):
    """(BGR image, semantic map of contiguous classes, thing boxes, thing classes, stuff classes present)."""
    import cv2

    image = cv2.imread(os.path.join(DATA, "images", entry["file_name"].replace(".png", ".jpg")))
    png = cv2.imread(os.path.join(DATA, "annotations", "panoptic_val2017", entry["file_name"]))[:, :, ::-1]
    ids = panoptic_rgb_to_id(png)
    contiguous = {c["id"]: i for i, c in enumerate(categories)}
    sem = np.full(ids.shape, -1, np.int64)
    boxes, classes, stuff = [], [], set()
    for s in entry["segments_info"]:
        c = contiguous[s["category_id"]]
        sem[ids == s["id"]] = c
        if categories[c]["isthing"]:
            x, y, w, h = s["bbox"]
            boxes.append([x, y, x + w, y + h])
            classes.append(c)
        else:
            stuff.add(c)
    return image, sem, boxes, classes, sorted(stuff)


def synthetic_inputs(image, sem, boxes, classes, stuff, num_classes, seed):
    """Q (C, H, W) and the DetectionLabels of one image (module doc)."""
    rng = np.random.RandomState(seed)
    h, w = sem.shape
    onehot = np.zeros((num_classes, h, w), np.float32)
    ys, xs = np.nonzero(sem >= 0)
    onehot[sem[ys, xs], ys, xs] = 1.0
    logits = torch.from_numpy(6.0 * onehot + 4.0 * rng.rand(num_classes, h, w).astype(np.float32))
    logits = F.avg_pool2d(logits[None], 9, 1, 4, count_include_pad=False)[0]
    q = torch.softmax(logits, 0)
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(b):
        size = np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]] * 2, 1)
        b = np.clip(b + rng.uniform(-0.1, 0.1, b.shape).astype(np.float32) * size, 0, [w, h, w, h])
    labels = detection_labels(b, classes, rng.uniform(0.5, 1.0, len(b)), stuff, (h, w))
    return q, labels


def local_crf_marginals(image_bgr, unary, stride, params=WSPS_INSTANCE_CRF):
    """:func:`wsis.core.meanfield.coarse_to_fine_mean_field` of one image's (L, H, W) unary → (L, H, W) marginals."""
    img = torch.from_numpy(np.ascontiguousarray(image_bgr.transpose(2, 0, 1))).float()[None]
    return coarse_to_fine_mean_field(unary[None], img, stride, params)[0]


def compare(limit, stride, params=WSPS_INSTANCE_CRF):
    meta = json.load(open(os.path.join(DATA, "annotations", "panoptic_val2017.json")))
    cats = meta["categories"]
    rows = []
    torch.set_num_threads(1)
    for k, entry in enumerate(sorted(meta["annotations"], key=lambda a: a["image_id"])[:limit]):
        image, sem, boxes, classes, stuff = load_image(entry, cats)
        q, labels = synthetic_inputs(image, sem, boxes, classes, stuff, len(cats), seed=k)
        unary = detection_unary(q, labels, 1.0, 1.0, 1.0)
        probs = torch.softmax(-unary, 0)  # exp(−U) normalised per pixel: the same mean-field
        t0 = time.perf_counter()
        ref = dense_crf(image, probs.numpy(), REFERENCE)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        mine = local_crf_marginals(image, unary, stride, params)
        t_mine = time.perf_counter() - t0
        agree = float((torch.from_numpy(ref).argmax(0) == mine.argmax(0)).float().mean())
        unary_only = float((probs.argmax(0) == torch.from_numpy(ref).argmax(0)).float().mean())
        rows.append({"image_id": entry["image_id"], "pixels": int(sem.size), "labels": len(labels),
                     "agreement": agree, "unary_argmax_agreement": unary_only, "pydensecrf_s": t_ref,
                     "local_s": t_mine})
        print(f"{entry['image_id']}: {len(labels)} labels, agreement {agree:.4f} (unary alone {unary_only:.4f}), "
              f"pydensecrf {t_ref:.3f} s, local {t_mine:.3f} s", flush=True)
    return rows


MEMORY_CHILD = """
import dataclasses, sys, torch
sys.path.insert(0, {repo!r})
from wsis.core.meanfield import coarse_to_fine_mean_field
from wsis.methods.panoptic.instance_crf import WSPS_INSTANCE_CRF
P = dataclasses.replace(WSPS_INSTANCE_CRF, window={window})
torch.set_num_threads(1)
u = torch.rand(1, {labels}, {h}, {w})
img = torch.rand(1, 3, {h}, {w}) * 255
status = lambda key: int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1])
before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current resident size
if {run}:
    q = coarse_to_fine_mean_field(u, img, {stride}, P)
print(status("VmHWM:") - before)
"""


def memory(stride, window):
    out = []
    for h, w in ((480, 640), (960, 1280)):
        for labels in (5, 20, 50):
            kib = []
            for run in (0, 1):
                code = MEMORY_CHILD.format(repo=REPO, labels=labels, h=h, w=w, run=run, stride=stride, window=window)
                kib.append(int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                              check=True).stdout.split()[-1]))
            mib = (kib[1] - kib[0]) / 1024  # the peak above the inputs, minus a run that computes nothing
            out.append({"image": [h, w], "labels": labels, "peak_mib": mib,
                        "bytes_per_label_pixel": (kib[1] - kib[0]) * 1024 / (labels * h * w)})
            print(f"{h}x{w}, {labels} labels: +{mib:.1f} MiB ({out[-1]['bytes_per_label_pixel']:.1f} B per label x "
                  "pixel)", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--stride", type=int, default=8)
    p.add_argument("--window", type=int, default=15, help="local window at the coarse map (odd)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    params = dataclasses.replace(WSPS_INSTANCE_CRF, window=args.window)
    rows = compare(args.images, args.stride, params)
    agree = np.mean([r["agreement"] for r in rows])
    t_ref, t_mine = sum(r["pydensecrf_s"] for r in rows), sum(r["local_s"] for r in rows)
    print(f"\n{len(rows)} images, stride {args.stride}, window {args.window}: mean MAP agreement {agree:.4f} (unary arg max alone "
          f"{np.mean([r['unary_argmax_agreement'] for r in rows]):.4f}); time pydensecrf {t_ref:.2f} s, local "
          f"{t_mine:.2f} s ({t_ref / t_mine:.1f}x faster); labels per image {min(r['labels'] for r in rows)}–"
          f"{max(r['labels'] for r in rows)}", flush=True)
    mem = memory(args.stride, args.window)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"stride": args.stride, "window": args.window, "images": rows, "memory": mem}, f, indent=1)


if __name__ == "__main__":
    main()
