"""
Pseudo-label generation past one machine: a deterministic split of a dataset into shards (each its own resumable
store, e.g. one task of a SLURM array) and the merge of the shard stores into the store a single run writes, byte for
byte.

A shard store's provenance is the unsharded one plus ``"shard": {"index": i, "count": K}``; the merge checks that
the shards are the K distinct shards of one run (same provenance otherwise, disjoint images, every index present)
and writes the records through :class:`wsis.data.pseudo_store.PseudoMaskWriter`, whose canonical serialisation makes
the result identical to an unsharded run's file.
"""
import logging
import os

from wsis.data.pseudo_store import PseudoMaskError, PseudoMaskWriter, load_pseudo_masks

__all__ = ["shard_dicts", "shard_provenance", "merge_shards"]
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


def merge_shards(shard_files, out_path, overwrite=False):
    """
    Merge the stores of every shard of one run into ``out_path``.

    Raises:
        PseudoMaskError: naming the file when a shard is missing, repeated, from another run, or overlaps another.

    Returns:
        (provenance, {image_id: record}) of the merged store.
    """
    if not shard_files:
        raise PseudoMaskError("--merge needs the shard stores to merge")
    base, by_index, records = None, {}, {}
    for path in shard_files:
        provenance, recs = load_pseudo_masks(path)
        shard = provenance.get("shard")
        if not isinstance(shard, dict) or set(shard) != {"index", "count"}:
            raise PseudoMaskError(f"{path}: not a shard store (its provenance has no 'shard' entry)")
        run = {k: v for k, v in provenance.items() if k != "shard"}
        if base is None:
            base, count = run, shard["count"]
        elif run != base or shard["count"] != count:
            raise PseudoMaskError(f"{path}: a shard of another run (provenance differs from {shard_files[0]})")
        if shard["index"] in by_index:
            raise PseudoMaskError(f"{path}: shard {shard['index']} is also {by_index[shard['index']]}")
        by_index[shard["index"]] = path
        overlap = set(recs) & set(records)
        if overlap:
            raise PseudoMaskError(f"{path}: image id {min(overlap)} is also in another shard")
        records.update(recs)
    missing = sorted(set(range(count)) - set(by_index))
    if missing:
        raise PseudoMaskError(f"shard(s) {missing} of {count} missing from --merge")
    if os.path.exists(out_path) and not overwrite:
        raise PseudoMaskError(f"{out_path} exists; pass --overwrite to replace it")
    with PseudoMaskWriter(out_path, base, overwrite=True) as writer:
        for image_id in sorted(records):
            writer.add(records[image_id])
    logger.info(f"merged {count} shards ({len(records)} images) into {out_path}")
    return base, records
