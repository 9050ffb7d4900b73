"""GeneralizedRCNN whose pasted instance masks are refined by a DenseCRF against the image (BBTP's inference)."""
import numpy as np
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.layers.mask_ops import paste_masks_in_image
from detectron2.modeling.postprocessing import detector_postprocess

from wsis.core.crf import DenseCRFParams
from wsis.methods.bbtp.mask_crf import refine_instance_masks, shared_executor

__all__ = ["GeneralizedRCNNWithMaskCRF"]


@META_ARCH_REGISTRY.register()
class GeneralizedRCNNWithMaskCRF(GeneralizedRCNN):
    """
    ``GeneralizedRCNN``; at inference with ``MODEL.MASK_CRF.ENABLED`` each instance's soft mask is pasted into the
    image, refined by a 2-label DenseCRF on a crop around its box (:func:`wsis.methods.bbtp.mask_crf.refine_instance_masks`) and
    thresholded at 0.5. With CRF disabled it is exactly ``GeneralizedRCNN``. ``crf_num_workers > 0`` refines in the
    process-wide pool of :func:`wsis.methods.bbtp.mask_crf.shared_executor`; the model holds no pool (deep-copyable).
    """

    @configurable
    def __init__(self, *, crf_enabled=False, crf_params=DenseCRFParams(), crf_box_margin=0.2, crf_num_workers=0,
                 **kwargs):
        super().__init__(**kwargs)
        self.crf_enabled = crf_enabled
        self.crf_params = crf_params
        self.crf_box_margin = crf_box_margin
        self.crf_num_workers = crf_num_workers

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        c = cfg.MODEL.MASK_CRF
        ret.update(
            crf_enabled=c.ENABLED,
            crf_params=DenseCRFParams(
                iterations=c.ITERATIONS, bilateral_weight=c.BILATERAL_WEIGHT, bilateral_xy_std=c.BILATERAL_XY_STD,
                bilateral_rgb_std=c.BILATERAL_RGB_STD, gaussian_weight=c.GAUSSIAN_WEIGHT,
                gaussian_xy_std=c.GAUSSIAN_XY_STD, normalization=c.NORMALIZATION,
            ),
            crf_box_margin=c.BOX_MARGIN,
            crf_num_workers=c.NUM_WORKERS,
        )
        return ret

    def inference(self, batched_inputs, detected_instances=None, do_postprocess=True):
        if not (self.crf_enabled and do_postprocess):
            return super().inference(batched_inputs, detected_instances, do_postprocess)
        results = super().inference(batched_inputs, detected_instances, do_postprocess=False)
        executor = shared_executor(self.crf_num_workers)
        processed = []
        for r, inp in zip(results, batched_inputs):
            h, w = inp.get("height", r.image_size[0]), inp.get("width", r.image_size[1])
            has_masks = r.has("pred_masks")
            if has_masks:  # detector_postprocess would binarise them (BitMasks); keep the (N, 1, M, M) probabilities
                r.roi_mask_probs = r.pred_masks
                r.remove("pred_masks")
            out = detector_postprocess(r, h, w)
            if has_masks:
                probs = out.roi_mask_probs
                out.remove("roi_mask_probs")
                soft = paste_masks_in_image(probs[:, 0], out.pred_boxes, (h, w), threshold=-1)  # uint8 0..255
                if len(out):
                    refined = refine_instance_masks(
                        self._original_image(inp, h, w), soft.float().cpu().numpy() / 255.0,
                        out.pred_boxes.tensor.cpu().numpy(), self.crf_params, self.crf_box_margin, executor,
                    )
                    out.pred_masks = torch.from_numpy(refined > 0.5).to(out.pred_boxes.device)
                else:
                    out.pred_masks = soft > 127
            processed.append({"instances": out})
        return processed

    def _original_image(self, inp, height, width):
        """The input image resized back to the output resolution, as (H, W, 3) uint8 in its input format."""
        image = inp["image"].float()[None]
        if tuple(image.shape[-2:]) != (height, width):
            image = F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False)
        return np.ascontiguousarray(image[0].permute(1, 2, 0).clamp(0, 255).byte().cpu().numpy())
