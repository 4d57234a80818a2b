"""GOT-10k, the tracking training set, read with the got10k toolkit.

``<root>/<subset>/list.txt`` and, per sequence, ``00000001.jpg ...``, ``groundtruth.txt``,
``meta_info.ini``, ``absence.label``, ``cover.label``, ``cut_by_image.label`` (test sequences have
the first box only). It is distributed after registration, so it is never downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from got10k.datasets import GOT10k

from ..errors import DatasetError
from .toolkit import TrackingSequence, toolkit_prints_to_log, toolkit_sequences

GOT10K_SUBSETS = ("train", "val", "test")
GOT10K_LABELS = ("absence.label", "cover.label", "cut_by_image.label")
GOT10K_SITE = "http://got-10k.aitestunion.com/"


def _got10k_list(root: Path, subset: str) -> list[str]:
    if subset not in GOT10K_SUBSETS:
        raise DatasetError(f"GOT-10k subset {subset!r}: expected one of {', '.join(GOT10K_SUBSETS)}")
    list_file = root / subset / "list.txt"
    if not list_file.is_file():
        raise DatasetError(
            f"{list_file} not found: no GOT-10k {subset} set at {root}. GOT-10k is distributed after "
            f"registration at {GOT10K_SITE}; download it there and set data.got10k_root to the folder "
            "holding train/, val/ and test/"
        )
    names = list_file.read_text().split()
    missing = [n for n in names if not (root / subset / n).is_dir()]
    if missing:
        raise DatasetError(
            f"{root / subset}: {len(missing)} of the {len(names)} sequences in list.txt have no folder "
            f"(e.g. {missing[0]})"
        )
    return names


def got10k_sequences(root: str | Path, subset: str) -> list[TrackingSequence]:
    """The sequences of a GOT-10k subset; a test sequence has its first box only."""
    root = Path(root)
    _got10k_list(root, subset)
    with toolkit_prints_to_log():
        dataset = GOT10k(str(root), subset=subset)
    return toolkit_sequences(
        dataset,
        (AssertionError, ValueError, OSError),
        lambda source, name, err: f"{source}: unreadable, or its boxes do not fit the frames of {name} ({err})",
    )


def got10k_meta(root: str | Path, subset: str) -> dict[str, dict[str, Any]]:
    """Per sequence of a train or val subset: meta_info.ini's fields and the per-frame labels
    ``absence``, ``cover`` (visible part, 0-8) and ``cut_by_image`` as arrays."""
    root = Path(root)
    names = _got10k_list(root, subset)
    for name in names:
        for required in ("meta_info.ini", *GOT10K_LABELS):
            if not (root / subset / name / required).is_file():
                raise DatasetError(f"{root / subset / name / required}: missing from this GOT-10k sequence")
    dataset = GOT10k(str(root), subset=subset, return_meta=True)
    return {name: dataset[number][2] for number, name in enumerate(dataset.seq_names)}


def got10k_summary(root: str | Path, subsets: tuple[str, ...] = GOT10K_SUBSETS) -> dict[str, dict[str, int]]:
    """Sequences and frames per subset, after checking each sequence reads."""
    summary = {}
    for subset in subsets:
        sequences = got10k_sequences(root, subset)
        if subset != "test":
            got10k_meta(root, subset)
        summary[subset] = {"sequences": len(sequences), "frames": sum(len(files) for _, files, _ in sequences)}
    return summary
