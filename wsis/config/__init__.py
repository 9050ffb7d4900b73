from .defaults import (
    add_box_supervision_config,
    add_evaluation_config,
    add_mask_crf_config,
    add_proxy_mask_head_config,
    add_weak_data_config,
    add_wsis_config,
)

__all__ = [
    "add_wsis_config",
    "add_weak_data_config",
    "add_proxy_mask_head_config",
    "add_box_supervision_config",
    "add_mask_crf_config",
    "add_evaluation_config",
]
