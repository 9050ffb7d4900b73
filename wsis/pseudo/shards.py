"""
Pseudo-label generation past one machine: a deterministic split of a dataset into shards (each its own resumable
store, e.g. one task of a SLURM array) and the merge of the shard stores into the store a single run writes, byte for
byte.

A shard store's provenance is the unsharded one plus ``"shard": {"index": i, "count": K}``; the merge checks that
the shards are the K distinct shards of one run (same provenance otherwise, disjoint images, every index present)
and writes the records through the store's own writer (:class:`wsis.data.pseudo_store.PseudoMaskWriter`,
:class:`wsis.data.cue_store.CueWriter`), whose canonical serialisation makes the result identical to an unsharded
run's store. One implementation for every kind of store (:class:`wsis.pseudo.runner.StoreKind`).
"""
import logging
import os

from .runner import CUES, store_kind

__all__ = ["shard_dicts", "shard_provenance", "merge_shards", "merge_cue_shards"]
logger = logging.getLogger(__name__)


def _check_shard(num_shards, shard_index):
    if int(num_shards) != num_shards or num_shards < 1:
        raise ValueError(f"--num-shards must be a positive integer, got {num_shards!r}")
    if int(shard_index) != shard_index or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, {num_shards}), got {shard_index!r}")


def shard_dicts(dataset_dicts, num_shards, shard_index):
    """
    The images of shard ``shard_index`` of ``num_shards``: the ones whose rank in the sorted image ids is
    ``shard_index`` modulo ``num_shards`` (deterministic, balanced within one image, independent of list order).
    """
    _check_shard(num_shards, shard_index)
    if num_shards == 1:
        return list(dataset_dicts)
    ids = sorted({d["image_id"] for d in dataset_dicts})
    mine = set(ids[shard_index::num_shards])
    return [d for d in dataset_dicts if d["image_id"] in mine]


def shard_provenance(provenance, num_shards, shard_index):
    """The provenance of a shard store (the run's, plus its place); unchanged for a single shard."""
    _check_shard(num_shards, shard_index)
    if num_shards == 1:
        return dict(provenance)
    return dict(provenance, shard={"index": int(shard_index), "count": int(num_shards)})


def merge_shards(shard_files, out_path, overwrite=False, store=None):
    """
    Merge the stores of every shard of one run into ``out_path``.

    Args:
        shard_files (list[str]): the shard stores (files for pseudo masks, folders for cues), in any order.
        out_path (str): the merged store; it must not exist unless ``overwrite``, and must not be a shard.
        store: the kind of store (:func:`wsis.pseudo.runner.store_kind`): None (pseudo masks), "cues", a StoreKind.

    Raises:
        PseudoMaskError / CueStoreError (the kind's ``error``): naming the store when a shard is missing, repeated,
            from another run, or overlaps another.

    Returns:
        (provenance, {image_id: record}) of the merged store (for cues: {image_id: index entry}).
    """
    kind = store_kind(store)
    if not shard_files:
        raise kind.error("--merge needs the shard stores to merge")
    base, by_index, records, origin = None, {}, {}, {}
    for path in shard_files:
        provenance, recs = kind.load(path)
        shard = provenance.get("shard")
        if not isinstance(shard, dict) or set(shard) != {"index", "count"}:
            raise kind.error(f"{path}: not a shard store (its provenance has no 'shard' entry)")
        run = {k: v for k, v in provenance.items() if k != "shard"}
        if base is None:
            base, count = run, shard["count"]
        elif run != base or shard["count"] != count:
            raise kind.error(f"{path}: a shard of another run (provenance differs from {shard_files[0]})")
        if shard["index"] in by_index:
            raise kind.error(f"{path}: shard {shard['index']} is also {by_index[shard['index']]}")
        by_index[shard["index"]] = path
        overlap = set(recs) & set(records)
        if overlap:
            raise kind.error(f"{path}: image id {min(overlap)} is also in another shard")
        records.update(recs)
        origin.update(dict.fromkeys(recs, path))
    missing = sorted(set(range(count)) - set(by_index))
    if missing:
        raise kind.error(f"shard(s) {missing} of {count} missing from --merge")
    if os.path.realpath(out_path) in {os.path.realpath(p) for p in shard_files}:
        raise kind.error(f"{out_path} is one of the shards; merge into another store")
    if os.path.exists(kind.index_path(out_path)) and not overwrite:
        raise kind.error(f"{out_path} exists; pass --overwrite to replace it")
    with kind.writer(out_path, base, overwrite=True) as writer:
        for image_id in sorted(records):
            writer.add(kind.record(origin[image_id], records[image_id]))
    logger.info(f"merged {count} shards ({len(records)} images) into {out_path}")
    return base, records


def merge_cue_shards(shard_dirs, out_dir, overwrite=False):
    """:func:`merge_shards` of cue stores (:mod:`wsis.data.cue_store`): the folder of a single run, byte for byte."""
    return merge_shards(shard_dirs, out_dir, overwrite=overwrite, store=CUES)
