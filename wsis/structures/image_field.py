"""Per-image data (an ignore region, a LAB image) that travels as a per-instance ``Instances`` field."""
import torch


class PerImageField:
    """
    One (H, W) or (C, H, W) tensor shared by the N instances of an image, stored once instead of N times.

    It behaves like Detectron2's ``BitMasks`` where ROI heads need it: ``len``, indexing (so that
    ``label_and_sample_proposals`` carries it to sampled proposals as a ``gt_*`` field), ``.to(device)`` and
    ``crop_and_resize(boxes, mask_size)``. wsis uses it for the ignore region of pseudo labels (``gt_ignore``, bool)
    and the LAB image of BoxInst's colour affinity (``gt_image_lab``, float).

    Attributes:
        tensor (Tensor): (H, W) or (C, H, W).
        num_instances (int): N, the number of instances it is attached to.
    """

    def __init__(self, tensor, num_instances):
        tensor = torch.as_tensor(tensor)
        if tensor.dim() not in (2, 3):
            raise ValueError(f"PerImageField needs an (H, W) or (C, H, W) tensor, got shape {tuple(tensor.shape)}")
        self.tensor = tensor
        self.num_instances = int(num_instances)

    def __len__(self):
        return self.num_instances

    def __getitem__(self, item):
        n = 1 if isinstance(item, int) else len(torch.arange(self.num_instances)[item])
        return PerImageField(self.tensor, n)

    def to(self, *args, **kwargs):
        return PerImageField(self.tensor.to(*args, **kwargs), self.num_instances)

    @property
    def device(self):
        return self.tensor.device

    def crop_and_resize(self, boxes, mask_size):
        """
        Args:
            boxes (Tensor): (N, 4) XYXY boxes in image coordinates.
            mask_size (int): M.

        Returns:
            Tensor[float]: (N, M, M) for an (H, W) field (for a bool region: the fraction of each cell covered), or
            (N, C, M, M) for a (C, H, W) field; ROIAlign with aligned=True, as ``BitMasks.crop_and_resize`` does.
        """
        from detectron2.layers.roi_align import ROIAlign

        planar = self.tensor.dim() == 2
        c = 1 if planar else self.tensor.shape[0]
        if len(boxes) == 0:
            shape = (0, mask_size, mask_size) if planar else (0, c, mask_size, mask_size)
            return torch.zeros(shape, device=boxes.device)
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], dim=1)
        data = self.tensor.to(device=boxes.device, dtype=torch.float32)
        data = data[None, None] if planar else data[None]
        out = ROIAlign((mask_size, mask_size), 1.0, 0, aligned=True).forward(data, rois)
        return out.squeeze(1) if planar else out

    def __repr__(self):
        return f"PerImageField(shape={tuple(self.tensor.shape)}, num_instances={self.num_instances})"
