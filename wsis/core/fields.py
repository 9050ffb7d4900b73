"""
Per-image and per-instance data (ignore regions, a Lab image) that travel as ``Instances`` fields.

``label_and_sample_proposals`` copies every ``gt_*`` field onto the sampled proposals by indexing it, and
``Instances.cat`` concatenates fields with their class's ``cat``; both fields here support that, ``.to(device)``,
``len`` and ``crop_and_resize(boxes, M)`` (ROIAlign with aligned=True, as ``BitMasks.crop_and_resize`` does, but
returning the **covered fraction** of each cell instead of a thresholded mask).
"""
import torch

__all__ = ["PerImageField", "PerInstanceField"]


def _roi_align(data, boxes, mask_size, batch_index):
    """(B, C, H, W) float data, (N, 4) boxes, (N,) index into B → (N, C, M, M)."""
    from detectron2.layers.roi_align import ROIAlign

    rois = torch.cat([batch_index.to(boxes.dtype)[:, None], boxes], dim=1)
    return ROIAlign((mask_size, mask_size), 1.0, 0, aligned=True).forward(data, rois)


def _check(tensor, dims, what):
    tensor = torch.as_tensor(tensor)
    if tensor.dim() not in dims:
        raise ValueError(f"{what} needs a tensor of {' or '.join(f'{d} dims' for d in dims)}, got shape "
                         f"{tuple(tensor.shape)}")
    return tensor


def _empty_crop(field_shape, boxes, mask_size, per_instance):
    planar = len(field_shape) == (3 if per_instance else 2)
    c = 1 if planar else field_shape[-3]
    shape = (0, mask_size, mask_size) if planar else (0, c, mask_size, mask_size)
    return torch.zeros(shape, device=boxes.device)


class PerImageField:
    """
    One (H, W) or (C, H, W) tensor shared by the N instances of an image, stored once instead of N times: the
    image-level ignore region of pseudo labels (``gt_ignore``, bool) or the Lab image of BoxInst's colour affinity
    (``gt_image_lab``, float).

    Attributes:
        tensor (Tensor): (H, W) or (C, H, W).
        num_instances (int): N, the number of instances it is attached to.
    """

    def __init__(self, tensor, num_instances):
        self.tensor = _check(tensor, (2, 3), "PerImageField")
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

    def per_instance(self):
        """The same data as a :class:`PerInstanceField` (N copies; for concatenation with other images' data)."""
        return PerInstanceField(self.tensor.unsqueeze(0).expand(self.num_instances, *self.tensor.shape))

    @staticmethod
    def cat(fields):
        """
        Concatenate the fields of instances of one image: one :class:`PerImageField` when they all share one tensor
        (by identity or value), else a :class:`PerInstanceField` holding each instance's own data.
        """
        fields = list(fields)
        if not fields:
            raise ValueError("cannot concatenate an empty list of fields")
        first = fields[0]
        if all(isinstance(f, PerImageField) for f in fields) and all(
                f.tensor is first.tensor or (f.tensor.shape == first.tensor.shape and torch.equal(f.tensor, first.tensor))
                for f in fields):
            return PerImageField(first.tensor, sum(len(f) for f in fields))
        return PerInstanceField.cat(fields)

    def crop_and_resize(self, boxes, mask_size):
        """
        Args:
            boxes (Tensor): (N, 4) XYXY boxes in image coordinates.
            mask_size (int): M.

        Returns:
            Tensor[float]: (N, M, M) for an (H, W) field (for a bool region: the fraction of each cell covered), or
            (N, C, M, M) for a (C, H, W) field.
        """
        if len(boxes) == 0:
            return _empty_crop(self.tensor.shape, boxes, mask_size, per_instance=False)
        planar = self.tensor.dim() == 2
        data = self.tensor.to(device=boxes.device, dtype=torch.float32)
        data = data[None, None] if planar else data[None]
        out = _roi_align(data, boxes, mask_size, torch.zeros(len(boxes), device=boxes.device))
        return out.squeeze(1) if planar else out

    def __repr__(self):
        return f"PerImageField(shape={tuple(self.tensor.shape)}, num_instances={self.num_instances})"


class PerInstanceField:
    """
    One (H, W) or (C, H, W) slice per instance, as an (N, H, W) or (N, C, H, W) tensor: per-instance ignore regions
    (an instance's own region ∪ the image's), or the result of concatenating different :class:`PerImageField`.
    """

    def __init__(self, tensor):
        self.tensor = _check(tensor, (3, 4), "PerInstanceField")

    def __len__(self):
        return self.tensor.shape[0]

    def __getitem__(self, item):
        if isinstance(item, int):
            return PerInstanceField(self.tensor[item].unsqueeze(0))
        return PerInstanceField(self.tensor[item])

    def to(self, *args, **kwargs):
        return PerInstanceField(self.tensor.to(*args, **kwargs))

    @property
    def device(self):
        return self.tensor.device

    @staticmethod
    def cat(fields):
        """Concatenate per-instance and per-image fields of one image size into a :class:`PerInstanceField`."""
        tensors = [f.per_instance().tensor if isinstance(f, PerImageField) else f.tensor for f in fields]
        if len({tuple(t.shape[1:]) for t in tensors}) > 1:
            raise ValueError(f"cannot concatenate fields of shapes {[tuple(t.shape[1:]) for t in tensors]}")
        return PerInstanceField(torch.cat(tensors, dim=0))

    def crop_and_resize(self, boxes, mask_size):
        """(N, 4) boxes, one per instance → (N, M, M) covered fractions (or (N, C, M, M)), as
        :meth:`PerImageField.crop_and_resize`."""
        if len(boxes) != len(self):
            raise ValueError(f"{len(boxes)} boxes for {len(self)} instances")
        if len(boxes) == 0:
            return _empty_crop(self.tensor.shape, boxes, mask_size, per_instance=True)
        planar = self.tensor.dim() == 3
        data = self.tensor.to(device=boxes.device, dtype=torch.float32)
        data = data[:, None] if planar else data
        out = _roi_align(data, boxes, mask_size, torch.arange(len(boxes), device=boxes.device))
        return out.squeeze(1) if planar else out

    def __repr__(self):
        return f"PerInstanceField(shape={tuple(self.tensor.shape)})"
