"""``DSRGSemanticSegmentor``: detectron2's ``SemanticSegmentor`` that also hands its head the images and the image
tags of a training batch (for the DSRG step's CRF and growing)."""
import torch

from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.semantic_seg import SemanticSegmentor
from detectron2.structures import ImageList

__all__ = ["DSRGSemanticSegmentor", "batch_tags"]


def batch_tags(batched_inputs, num_classes, device):
    """(B, num_classes) bool: background and ``image_labels`` + 1 of each input (none: background only)."""
    tags = torch.zeros(len(batched_inputs), num_classes, dtype=torch.bool)
    tags[:, 0] = True
    for i, x in enumerate(batched_inputs):
        labels = [int(c) + 1 for c in x.get("image_labels", [])]
        bad = [c - 1 for c in labels if not 0 < c < num_classes]
        if bad:
            raise ValueError(f"image id {x.get('image_id')} ({x.get('file_name')}): tags {bad} are not classes of a "
                             f"{num_classes}-class head (background + {num_classes - 1})")
        tags[i, labels] = True
    return tags.to(device)


@META_ARCH_REGISTRY.register()
class DSRGSemanticSegmentor(SemanticSegmentor):
    """
    ``SemanticSegmentor`` (same config keys, same outputs) whose training forward first gives the head
    ``batch_images`` (the unnormalised inputs, padded like the targets) and ``batch_tags`` (from the dicts'
    ``image_labels``). Any ``SEM_SEG_HEADS_REGISTRY`` head works; ``DSRGHead`` uses them.
    """

    def forward(self, batched_inputs):
        head = self.sem_seg_head
        if not self.training or not hasattr(head, "batch_images"):
            return super().forward(batched_inputs)
        images = ImageList.from_tensors([x["image"].to(self.device).float() for x in batched_inputs],
                                        self.backbone.size_divisibility,
                                        padding_constraints=self.backbone.padding_constraints)
        head.batch_images = images.tensor
        head.batch_tags = batch_tags(batched_inputs, head.num_classes, self.device)
        try:
            return super().forward(batched_inputs)
        finally:
            head.batch_images = head.batch_tags = None
