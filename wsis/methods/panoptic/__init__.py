"""
WSPS's panoptic model (Li, Arnab & Torr, ECCV 2018, §3.5): the instance CRF over detections and dummy stuff
detections (:mod:`.instance_crf`), its matched loss (:mod:`.losses`) and the non-overlapping panoptic output
(:mod:`.segments`). Pure PyTorch; the detectron2 meta-architecture and the panoptic pseudo labels are to come
(issue 16).
"""
