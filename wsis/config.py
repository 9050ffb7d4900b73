"""
Config keys of wsis, added to a Detectron2 config by :func:`add_wsis_config` *before* ``merge_from_file``.

Each package owns its keys (``wsis.data.config``, ``wsis.evaluation.config``, ``wsis.methods.<m>.config``);
:func:`add_wsis_config` composes them. Every function adds missing keys only (:mod:`wsis.core.config`): calling it
twice, or after a user set a key, changes nothing. Needs no detectron2: any fvcore/yacs ``CfgNode`` works.
"""
from wsis.data.config import add_weak_data_config
from wsis.evaluation.config import add_evaluation_config
from wsis.methods.bbtp.config import add_bbtp_config, add_box_supervision_config, add_mask_crf_config
from wsis.methods.boxcaseg.config import add_boxcaseg_config
from wsis.methods.cam.config import add_cam_config
from wsis.methods.ccgr.config import add_ccgr_config
from wsis.methods.dsrg.config import add_dsrg_config
from wsis.methods.irnet.config import add_irnet_config
from wsis.methods.panoptic.config import add_panoptic_config
from wsis.methods.proxy_mask_rcnn.config import add_proxy_mask_head_config
from wsis.methods.wsps.config import add_wsps_config
from wsis.pseudo.config import add_pseudo_config

__all__ = ["add_wsis_config", "add_weak_data_config", "add_proxy_mask_head_config", "add_box_supervision_config",
           "add_mask_crf_config", "add_bbtp_config", "add_boxcaseg_config", "add_evaluation_config",
           "add_pseudo_config", "add_wsps_config", "add_cam_config", "add_irnet_config",
           "add_dsrg_config", "add_panoptic_config", "add_ccgr_config"]


def add_wsis_config(cfg):
    """Add every wsis key to ``cfg`` (in place) and return it."""
    add_weak_data_config(cfg)
    add_proxy_mask_head_config(cfg)
    add_bbtp_config(cfg)
    add_boxcaseg_config(cfg)
    add_evaluation_config(cfg)
    add_pseudo_config(cfg)
    add_wsps_config(cfg)
    add_cam_config(cfg)
    add_irnet_config(cfg)
    add_dsrg_config(cfg)
    add_panoptic_config(cfg)
    add_ccgr_config(cfg)
    return cfg
