"""
Helpers for the config functions of every wsis package (``add_*_config``), and the ``KEY VALUE`` overrides of its
commands. The config functions only add keys to the ``cfg`` they are
given (a copy made by ``detectron2.config.get_cfg()``), never to Detectron2's global default config, and work on any
fvcore/yacs ``CfgNode`` (children take the class of ``cfg``), so no config function needs detectron2. Each function
can be called alone, in any order and more than once: it adds the keys that are missing and never resets one that is
already there (a second call keeps what the first call's user set).
"""
import argparse

__all__ = ["defaults", "set_defaults", "node_to_kwargs", "add_overrides_argument", "parse_args_with_overrides"]


def _node(cfg, *path):
    """The child node ``cfg.<path>``, created where missing, of the class of ``cfg`` (so merging yaml works)."""
    node = cfg
    for name in path:
        if name not in node:
            node[name] = type(cfg)()
        node = node[name]
    return node


class _Defaults:
    """Attribute writes go to ``node`` only for keys it does not have yet."""

    def __init__(self, node):
        object.__setattr__(self, "_node", node)

    def __setattr__(self, key, value):
        if key not in self._node:
            self._node[key] = value


def defaults(cfg, *path):
    """A writer of default keys into ``cfg.<path>`` (created where missing) that never overwrites a key."""
    return _Defaults(_node(cfg, *path))


def set_defaults(cfg, path, values):
    """:func:`defaults` for a dict of lower-case ``values`` (keys upper-cased, lists as tuples), e.g. a dataclass's
    fields; returns the node."""
    d = defaults(cfg, *path)
    for key, value in values.items():
        setattr(d, key.upper(), tuple(tuple(v) if isinstance(v, list) else v for v in value)
                if isinstance(value, (list, tuple)) else value)
    return d._node


def node_to_kwargs(node):
    """A config node as keyword arguments: keys lower-cased, nested nodes as dicts, tuples as lists."""

    def plain(v):
        if isinstance(v, dict):
            return {k.lower(): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(node)


def add_overrides_argument(parser, help="config overrides"):
    """The trailing ``KEY VALUE ...`` config overrides of a command (as ``tools/train_net.py`` takes them)."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help=help)


def parse_args_with_overrides(parser, argv=None):
    """``parser.parse_args(argv)``, refusing overrides that are not ``KEY VALUE`` pairs (a one-line usage error)."""
    args = parser.parse_args(argv)
    if len(args.opts) % 2:
        parser.error(f"config overrides come in KEY VALUE pairs, got {args.opts}")
    return args
