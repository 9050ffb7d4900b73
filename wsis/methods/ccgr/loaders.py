"""CCGR's MIL branch in :class:`wsis.engine.WSISTrainer`: images with their bags (``WSIS.DATA.LOADERS
"CCGRBagLoaders"``, since the meta-architecture is detectron2's own ``GeneralizedRCNN``)."""
from detectron2.data import DatasetCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.evaluation import COCOEvaluator, DatasetEvaluators

from wsis.engine.loaders import LOADERS_REGISTRY

from .bag_file import attach_bags, read_bag_files
from .mapper import CCGRBagMapper

__all__ = ["CCGRBagLoaders", "read_bags"]


def read_bags(cfg):
    """image id → bags of every file of ``WSIS.CCGR.BAGS`` (:func:`~.bag_file.read_bag_files`)."""
    return read_bag_files(cfg.WSIS.CCGR.BAGS)


@LOADERS_REGISTRY.register()
class CCGRBagLoaders:
    """Training: the images of ``DATASETS.TRAIN`` that have bags; test: every image of the set (those without bags
    give no box); box AP of the MIL boxes against the set's boxes (COCOEvaluator)."""

    meta_architectures = ()

    @classmethod
    def build_train_loader(cls, cfg):
        bags = read_bags(cfg)
        dicts = [d for name in cfg.DATASETS.TRAIN for d in attach_bags(DatasetCatalog.get(name), bags) if "bags" in d]
        if not dicts:
            raise ValueError(f"no image of {list(cfg.DATASETS.TRAIN)} has bags in WSIS.CCGR.BAGS "
                             f"{list(cfg.WSIS.CCGR.BAGS)}")
        return build_detection_train_loader(cfg, mapper=CCGRBagMapper(cfg, is_train=True), dataset=dicts)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        dicts = attach_bags(DatasetCatalog.get(dataset_name), read_bags(cfg))
        return build_detection_test_loader(dicts, mapper=CCGRBagMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return DatasetEvaluators([COCOEvaluator(dataset_name, tasks=("bbox",), output_dir=output_folder,
                                                allow_cached_coco=False)])
