"""CAM / Grad-CAM (IRNet §3, WSPS §3.3): pure :mod:`.head`, :mod:`.losses`, :mod:`.localization`, :mod:`.labels`."""
