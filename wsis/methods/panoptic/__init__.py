"""
WSPS's panoptic model (Li, Arnab & Torr, ECCV 2018, §3.5): the instance CRF over detections and dummy stuff
detections (:mod:`.instance_crf`), its matched loss (:mod:`.losses`), the non-overlapping panoptic output
(:mod:`.segments`) and the iteration-0 panoptic pseudo labels, things from boxes and stuff from tags
(:mod:`.pseudo_labels`). Pure PyTorch / NumPy; the detectron2 meta-architecture is to come (issue 16).
"""
