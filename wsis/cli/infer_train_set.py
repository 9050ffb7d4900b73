"""
Run a trained checkpoint on a registered (training) dataset and save its instance predictions for the next round
(WSPS §3.4; CCGR's MIL boxes and instance branch): Detectron2's ``instances_predictions.pth`` format, a list of
``{"image_id", "instances": [COCO-style results with RLE "segmentation" when the model gives masks, dataset category
ids]}``, which ``tools/make_pseudo_masks.py --method wsps_round`` / ``ccgr`` and ``tools/make_ccgr_bags.py`` read.

    python tools/infer_train_set.py --config-file configs/quick_schedules/proxy_mask_rcnn_coco_tiny_instant_test.yaml \
        --dataset coco_tiny_train_box --out output/round1/instances_predictions.pth MODEL.WEIGHTS output/model_final.pth

Needs detectron2 (imported here only). Images are read as at test time, by the method's test loader
(``WSISTrainer.build_test_loader``: e.g. the MIL branch's images come with their bags);
lower ``MODEL.ROI_HEADS.SCORE_THRESH_TEST`` to keep weak detections, they enter the next round weighted by score.
"""
import argparse


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--dataset", required=True, help="registered dataset name, e.g. coco_tiny_train_box")
    p.add_argument("--out", required=True, help="instances_predictions.pth to write")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, e.g. MODEL.WEIGHTS path.pth")
    return p.parse_args(argv)


def build_collector(dataset_name):
    """A DatasetEvaluator that keeps every image's predicted instances as COCO results with dataset category ids."""
    from detectron2.data import MetadataCatalog
    from detectron2.evaluation import DatasetEvaluator
    from detectron2.evaluation.coco_evaluation import instances_to_coco_json

    meta = MetadataCatalog.get(dataset_name)
    to_dataset = {v: k for k, v in getattr(meta, "thing_dataset_id_to_contiguous_id", {}).items()}

    class PredictionCollector(DatasetEvaluator):
        def reset(self):
            self.predictions = []

        def process(self, inputs, outputs):
            for inp, out in zip(inputs, outputs):
                results = []
                if "instances" in out:
                    results = instances_to_coco_json(out["instances"].to("cpu"), inp["image_id"])
                    for r in results:
                        r["category_id"] = to_dataset.get(r["category_id"], r["category_id"])
                self.predictions.append({"image_id": inp["image_id"], "instances": results})

        def evaluate(self):
            return {}

    return PredictionCollector()


def main(argv=None):
    """The command line (``argv``; None: ``sys.argv``); returns the predictions written."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.evaluation import inference_on_dataset
    from detectron2.utils.logger import setup_logger

    import wsis.modeling  # noqa: F401  (registers every wsis model part and builtin dataset)
    from wsis.config import add_wsis_config
    from wsis.core.io import atomic_open
    from wsis.engine import WSISTrainer

    args = parse_args(argv)
    setup_logger(name="wsis")
    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    model = WSISTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    loader = WSISTrainer.build_test_loader(cfg, args.dataset)
    collector = build_collector(args.dataset)
    collector.reset()
    inference_on_dataset(model, loader, collector)
    predictions = sorted(collector.predictions, key=lambda p: p["image_id"])
    with atomic_open(args.out, "wb") as f:
        torch.save(predictions, f)
    print(f"{len(predictions)} images, {sum(len(p['instances']) for p in predictions)} instances -> {args.out}")
    return predictions

