"""
WSPS's panoptic model (Li, Arnab & Torr, ECCV 2018, §3.3-3.5). Pure parts: the instance CRF over detections and
dummy stuff detections (:mod:`.instance_crf`), its matched loss (:mod:`.losses`), the non-overlapping panoptic
output (:mod:`.segments`), the iteration-0 panoptic pseudo labels, things from boxes and stuff from tags
(:mod:`.pseudo_labels`, :mod:`.label_job`), label folders (:mod:`.label_folder`) and the next round's rules
(:mod:`.refine`). Detectron2 glue: ``WSPSPanopticNetwork`` (:mod:`.meta_arch`), ``PSPSemSegHead``
(:mod:`.psp_head`), ``PanopticLabelMapper`` (:mod:`.mapper`), its trainer loaders (:mod:`.loaders`) and the
next-round job (:mod:`.round_job`).
"""
