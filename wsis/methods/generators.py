"""``import wsis.methods.generators`` registers every built-in pseudo-mask generator (none needs detectron2 to import).

=============  ====================================================================  ==============================
name           generator                                                             config keys
=============  ====================================================================  ==============================
boxfill        :class:`wsis.pseudo.box_fill.BoxFillGenerator` (baseline)             ``WSIS.PSEUDO.BOXFILL``
wsps           :class:`wsis.methods.wsps.generator.WSPSGenerator` (§3.2)             ``WSIS.PSEUDO.WSPS``
wsps_round     :class:`wsis.methods.wsps.refine_round.WSPSRoundGenerator` (§3.4)     ``WSIS.PSEUDO.WSPS_ROUND``
boxcaseg       :class:`wsis.methods.boxcaseg.generator.BoxCasegProxyGenerator`       the model's config (detectron2)
irnet          :class:`wsis.methods.irnet.generator.IRNetGenerator` (from tags)      the model's config, ``WSIS.IRNET``
ccgr           :class:`wsis.methods.ccgr.generator.CCGRGenerator` (from tags)        the segmentation branch's config,
                                                                                     ``WSIS.CCGR``, ``MODEL.CCGR``
=============  ====================================================================  ==============================
"""
import wsis.methods.boxcaseg.generator  # noqa: F401
import wsis.methods.ccgr.generator  # noqa: F401
import wsis.methods.irnet.generator  # noqa: F401
import wsis.methods.wsps.generator  # noqa: F401
import wsis.methods.wsps.refine_round  # noqa: F401
import wsis.pseudo.box_fill  # noqa: F401
