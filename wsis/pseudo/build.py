"""Registry of pseudo-mask generators, by the method name used on the command line and in provenance."""

PSEUDO_MASK_GENERATORS = {}


def register_generator(name):
    """
    Class decorator registering a generator as ``name`` (e.g. "boxfill"). The class is constructed with keyword
    parameters and exposes ``params`` (json-serialisable, recorded in the store's provenance) and
    ``__call__(dataset_dict) -> image record``.
    """

    def deco(cls):
        if name in PSEUDO_MASK_GENERATORS:
            raise KeyError(f"a pseudo-mask generator named {name!r} is already registered")
        PSEUDO_MASK_GENERATORS[name] = cls
        return cls

    return deco


def build_generator(name, **params):
    """Construct the generator registered as ``name`` with keyword ``params``."""
    if name not in PSEUDO_MASK_GENERATORS:
        raise KeyError(f"unknown pseudo-mask method {name!r}; known: {sorted(PSEUDO_MASK_GENERATORS)}")
    return PSEUDO_MASK_GENERATORS[name](**params)
