"""A per-image region (e.g. the ignore region of pseudo labels) that travels as a per-instance ``Instances`` field."""
import torch


class ImageRegionMask:
    """
    One (H, W) boolean region shared by the N instances of an image, stored once instead of N times.

    It behaves like Detectron2's ``BitMasks`` where ROI heads need it: ``len``, indexing (so that
    ``label_and_sample_proposals`` carries it to sampled proposals as a ``gt_*`` field), ``.to(device)`` and
    ``crop_and_resize(boxes, mask_size)``.

    Attributes:
        tensor (Tensor[bool]): (H, W) region.
        num_instances (int): N, the number of instances it is attached to.
    """

    def __init__(self, tensor, num_instances):
        tensor = torch.as_tensor(tensor, dtype=torch.bool)
        if tensor.dim() != 2:
            raise ValueError(f"ImageRegionMask needs an (H, W) mask, got shape {tuple(tensor.shape)}")
        self.tensor = tensor
        self.num_instances = int(num_instances)

    def __len__(self):
        return self.num_instances

    def __getitem__(self, item):
        if isinstance(item, int):
            n = 1
        else:
            n = len(torch.arange(self.num_instances)[item])
        return ImageRegionMask(self.tensor, n)

    def to(self, *args, **kwargs):
        return ImageRegionMask(self.tensor.to(*args, **kwargs), self.num_instances)

    @property
    def device(self):
        return self.tensor.device

    def crop_and_resize(self, boxes, mask_size):
        """
        Args:
            boxes (Tensor): (N, 4) XYXY boxes in image coordinates.
            mask_size (int): M.

        Returns:
            Tensor[float]: (N, M, M) fraction of each output cell covered by the region (ROIAlign, aligned=True, as
            ``BitMasks.crop_and_resize`` does for targets).
        """
        from detectron2.layers.roi_align import ROIAlign

        if len(boxes) == 0:
            return torch.zeros(0, mask_size, mask_size, device=boxes.device)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
        region = self.tensor.to(device=boxes.device, dtype=torch.float32)[None, None]
        return ROIAlign((mask_size, mask_size), 1.0, 0, aligned=True).forward(region, rois).squeeze(1)

    def __repr__(self):
        return f"ImageRegionMask(shape={tuple(self.tensor.shape)}, num_instances={self.num_instances})"
