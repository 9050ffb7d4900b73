"""
The folder of a resumable per-image map job (``<out>/<image_id>.png``: semantic labels, seeds, saliency maps): its
``params.json`` (what made the maps), the refusal of a folder made with other params, and the skip report.
"""
import json
import os
import shutil

from wsis.core.io import atomic_write_json

__all__ = ["skip_report_name", "claim_label_folder", "missing_maps", "write_skip_report"]


def claim_label_folder(out_dir, params, overwrite=False, holds="maps made with other settings"):
    """
    Make ``out_dir`` the folder of a job with ``params``: a folder whose ``params.json`` differs is refused unless
    ``overwrite``, which empties it first; then ``params.json`` is written (atomically, sorted keys). A folder with
    the same params keeps its maps: the job resumes.

    Args:
        params (dict): json-serialisable; compared after a json round trip (tuples are lists).
        holds (str): what the refusal says the folder holds.

    Returns:
        dict: ``params`` as stored.
    """
    params = json.loads(json.dumps(params))
    params_file = os.path.join(out_dir, "params.json")
    if os.path.exists(params_file) and not overwrite:
        with open(params_file) as f:
            if json.load(f) != params:
                raise ValueError(f"{out_dir} holds {holds} ({params_file}); pass --overwrite to make them again")
    elif os.path.isdir(out_dir) and overwrite:
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_json(params, params_file, indent=1, sort_keys=True)
    return params


def missing_maps(out_dir, dataset_dicts):
    """The dicts whose ``<out_dir>/<image_id>.png`` does not exist yet (what a resumed job still has to make)."""
    return [d for d in dataset_dicts if not os.path.isfile(os.path.join(out_dir, f"{d['image_id']}.png"))]


def write_skip_report(out_dir, skipped, name="skipped.json"):
    """
    ``<out_dir>/<name>`` = ``[{"image_id", "reason"}]`` sorted by image id, or no such file when nothing was
    skipped (a resumed run that made the maps a previous run skipped removes that run's report).

    Args:
        skipped (list[tuple]): ``(image_id, reason)``.
        name (str): the report's file (shards writing into one folder each keep their own).
    """
    path = os.path.join(out_dir, name)
    if skipped:
        atomic_write_json([{"image_id": i, "reason": r} for i, r in sorted(skipped)], path, indent=1)
    elif os.path.exists(path):
        os.remove(path)


def skip_report_name(num_shards=1, shard_index=0):
    """``skipped.json``, or ``skipped_shard_<i>_of_<K>.json`` for shard i of K writing into a shared folder."""
    return "skipped.json" if num_shards == 1 else f"skipped_shard_{shard_index}_of_{num_shards}.json"
