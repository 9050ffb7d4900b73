"""Reading a pseudo-mask store: validation of every record and of its agreement with the dataset."""
import functools
import json
import logging
import os

from wsis.data.store_format import _check_against_dataset, _parse_store

from .format import FORMAT, FORMAT_VERSION, JOURNAL_SUFFIX, PseudoMaskError, _normalize_record

__all__ = ["load_pseudo_masks"]
logger = logging.getLogger("wsis.data.pseudo_store")


def load_pseudo_masks(path, dataset_dicts=None, *, require_all=False, expected_source_hash=None,
                      strict_source=False):
    """Read and validate a pseudo-mask file.

    Args:
        path: a file written by :meth:`PseudoMaskWriter.finalize`.
        dataset_dicts (list[dict] or None): if given, every record must match it: known image_id, same height and
            width, every non-null annotation_id present in that image's annotations with the same category_id.
        require_all (bool): every image of ``dataset_dicts`` must have a record.
        expected_source_hash (str or None): compared with ``provenance["source_hash"]``; a difference is logged as
            a warning, or raised with ``strict_source=True``.

    Returns:
        (provenance dict, {image_id: record}) with records in the canonical form of the module docstring.

    Raises:
        PseudoMaskError: naming the file and the offending image id / annotation id.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise PseudoMaskError(f"{path}: not valid JSON ({e}). An interrupted generator leaves only "
                                  f"{path + JOURNAL_SUFFIX}; rerun it to resume and finalize") from e
    provenance, records = _parse_store(data, path, file_format=FORMAT, format_version=FORMAT_VERSION,
                                       what="pseudo-mask file", normalize=_normalize_record, error=PseudoMaskError)

    if strict_source and expected_source_hash is None:
        raise ValueError("strict_source=True needs expected_source_hash")
    if expected_source_hash is not None and provenance["source_hash"] != expected_source_hash:
        msg = (f"{path}: pseudo masks were generated from source {provenance['source']!r} with hash "
               f"{provenance['source_hash']}, expected {expected_source_hash}; the annotations changed since")
        if strict_source:
            raise PseudoMaskError(msg)
        logger.warning(msg)

    _check_against_dataset(path, records, dataset_dicts, require_all, what="pseudo masks", error=PseudoMaskError,
                           check_image=functools.partial(_check_annotations, path))
    return provenance, records


def _check_annotations(path, image_id, record, d):
    """Every non-null annotation_id of ``record`` is an annotation of the dataset image ``d``, of the same class."""
    annotations = {a.get("id"): a for a in d.get("annotations", ())}
    for inst in record["instances"]:
        aid = inst["annotation_id"]
        if aid is None:
            continue
        if aid not in annotations:
            hint = "" if set(annotations) != {None} else (" (the dataset dicts carry no annotation 'id': load "
                                                           "them with extra_annotation_keys=['id'])")
            raise PseudoMaskError(f"{path}: image_id={image_id}, annotation_id={aid}: no annotation with this id "
                                  f"in the dataset image{hint}")
        if int(annotations[aid]["category_id"]) != inst["category_id"]:
            raise PseudoMaskError(f"{path}: image_id={image_id}, annotation_id={aid}: category_id is "
                                  f"{inst['category_id']} in the pseudo masks but "
                                  f"{annotations[aid]['category_id']} in the dataset")
