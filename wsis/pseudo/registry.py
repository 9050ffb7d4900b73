"""
The registry of pseudo-mask generators (an fvcore ``Registry``, as Detectron2 registers everything), keyed by the
method name used on the command line (``--method``) and in a store's provenance.

A generator is a picklable class whose instances expose ``params`` (json-serialisable, recorded in the store's
provenance) and ``__call__(dataset_dict) -> image record`` (:mod:`wsis.data.pseudo_store`). Its optional
``from_config(cfg, metadata)`` classmethod builds it from a yacs config (the ``KEY VALUE`` overrides of
``tools/make_pseudo_masks.py``); without one it is built with its defaults. Registration happens at import:
``import wsis.methods.generators`` registers every built-in generator.
"""
from fvcore.common.registry import Registry

__all__ = ["PSEUDO_MASK_GENERATOR_REGISTRY", "register_generator", "build_generator", "generator_from_config"]


class _NamedRegistry(Registry):
    """A ``Registry`` whose entries are registered under a given name instead of the class name."""

    def register_as(self, name):
        def deco(cls):
            self._do_register(name, cls)
            return cls

        return deco

    def names(self):
        return sorted(name for name, _ in self)


PSEUDO_MASK_GENERATOR_REGISTRY = _NamedRegistry("PSEUDO_MASK_GENERATOR")
PSEUDO_MASK_GENERATOR_REGISTRY.__doc__ = __doc__


def register_generator(name):
    """Class decorator registering a generator as ``name`` (e.g. "boxfill"); a second use of a name raises."""
    return PSEUDO_MASK_GENERATOR_REGISTRY.register_as(name)


def _get(name):
    if name not in PSEUDO_MASK_GENERATOR_REGISTRY:
        raise KeyError(f"unknown pseudo-mask method {name!r}; known: {PSEUDO_MASK_GENERATOR_REGISTRY.names()} "
                       "(import wsis.methods.generators registers the built-in ones)")
    return PSEUDO_MASK_GENERATOR_REGISTRY.get(name)


def build_generator(name, **params):
    """Construct the generator registered as ``name`` with keyword ``params``."""
    return _get(name)(**params)


def generator_from_config(name, cfg, metadata=None):
    """The generator ``name`` built from ``cfg`` (its ``from_config``; its defaults without one)."""
    cls = _get(name)
    if hasattr(cls, "from_config"):
        return cls.from_config(cfg, metadata or {})
    return cls()
