"""
WSPS (Li, Arnab & Torr, ECCV 2018): box pseudo labels (GrabCut ∩ segment proposals with ignore, DenseCRF; §3.2) and
the refinement rounds from a model's own predictions (§3.4), plus wsis's vote that settles the two estimates on
cluttered scenes (the default labels). Pure throughout: :mod:`.grabcut`, :mod:`.proposals`, :mod:`.fusion`,
:mod:`.vote`, :mod:`.crf`, :mod:`.crop`, :mod:`.refine_round`, :mod:`.generator` (``"wsps"``, ``"wsps_round"``
pseudo-mask generators), :mod:`.config`.
"""
