"""``CCGRBagMapper``: an image with its bags' proposals, for the MIL branch under ``PrecomputedProposals``."""
import copy

import numpy as np
import torch

from detectron2.config import configurable
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, Instances

__all__ = ["CCGRBagMapper"]


class CCGRBagMapper(DatasetMapper):
    """
    ``DatasetMapper`` that puts a dict's ``bags`` (:func:`wsis.methods.ccgr.bag_file.attach_bags`) through the
    image's augmentations, in their order and all of them (detectron2's own proposal handling sorts and cuts them,
    which would break the bags): ``proposals`` (Instances: ``proposal_boxes``, ``objectness_logits``,
    ``bag_index`` and ``bag_class``, the class of its bag). An image without bags gets none. Annotations are not
    used. An unreadable image is an error naming its file and id.
    """

    @configurable
    def __init__(self, is_train: bool, **kwargs):
        super().__init__(is_train, **kwargs)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret.update(use_instance_mask=False, use_keypoint=False, recompute_boxes=False, precomputed_proposal_topk=None)
        return ret

    def __call__(self, dataset_dict):
        d = copy.deepcopy(dataset_dict)
        try:
            image = utils.read_image(d["file_name"], format=self.image_format)
            utils.check_image_size(d, image)
        except (OSError, ValueError) as e:
            raise type(e)(f"{d.get('file_name')} (image id {d.get('image_id')}): {e}") from e
        aug = T.AugInput(image)
        transforms = self.augmentations(aug)
        image = aug.image
        h, w = image.shape[:2]
        d["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        d.pop("annotations", None)
        bags = d.pop("bags", None) or {"boxes": np.zeros((0, 4), np.float32), "objectness": np.zeros(0, np.float32),
                                       "bag_index": np.zeros(0, np.int64), "bag_labels": np.zeros(0, np.int64)}
        boxes = Boxes(torch.as_tensor(transforms.apply_box(np.asarray(bags["boxes"], np.float32).reshape(-1, 4)),
                                      dtype=torch.float32).reshape(-1, 4))
        boxes.clip((h, w))
        proposals = Instances((h, w))
        proposals.proposal_boxes = boxes
        proposals.objectness_logits = torch.as_tensor(bags["objectness"], dtype=torch.float32)
        proposals.bag_index = torch.as_tensor(bags["bag_index"], dtype=torch.long)
        proposals.bag_class = torch.as_tensor(bags["bag_labels"], dtype=torch.long)[proposals.bag_index]
        d["proposals"] = proposals
        return d
