"""DSRG (Huang et al., CVPR 2018): seeds from CAM, a segmentation head whose seeds grow during training."""
