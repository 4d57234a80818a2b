"""The linear probe's settings (the section ``eval.linear``): their defaults, ranges and checks, and
the protocol they describe in words (the tables' headers). Free of torch: the Snakefile reads the
settings, and a table job the words, without importing the evaluation (:mod:`.linear`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from ..settings.typed_yaml import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, Range


@dataclass
class LinearEvalConfig:
    """Linear probe on frozen features (Tables 3-8): MoCo's main_lincls protocol."""

    dataset: Literal["imagenet", "imagenet100"] = "imagenet"
    protocol: Literal["moco", "fast"] = "moco"  # fast: the same schedule on cached features of augmented views
    # fast: augmented views (RandomResizedCrop + flip) cached per training image; 8 keeps a cold probe over 10x
    # faster than MoCo's 100 views and within 1 point of it (benchmarks/linear_protocols.py, README)
    views: int = 8
    epochs: int = 100
    batch_size: int = 256
    lr: float = 30.0  # CMC reports that 10 works better on ImageNet-100
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [60, 80])  # lr x0.1 at these epochs
    image_size: int = 224  # RandomResizedCrop (train) and CenterCrop (val)
    resize: int = 256  # val: Resize(resize) + CenterCrop(image_size)
    # every epoch is validated; best: the best val top-1 of the epochs is reported (main_lincls's best_acc1,
    # which the authors report), last: the last epoch's. Both are recorded.
    report: Literal["best", "last"] = "best"
    seed: int = 0

    def check(self, key: str) -> None:
        """Raise a ConfigError for settings that do not fit together (``key``: this section's)."""
        check_milestones(self.milestones, key)


RANGES: dict[type, dict[str, Range]] = {
    LinearEvalConfig: {
        "views": AT_LEAST_1,
        "epochs": AT_LEAST_1,
        "batch_size": AT_LEAST_1,
        "lr": POSITIVE,
        "momentum": FRACTION,
        "weight_decay": AT_LEAST_0,
        "milestones": AT_LEAST_1,
        "image_size": Range(16),
        "resize": Range(16),
        "seed": AT_LEAST_0,
    },
}


def check_milestones(milestones: list[int], key: str) -> None:
    """A step schedule's epochs (the linear probe's, and the UCF101 evaluations') must increase."""
    if milestones != sorted(milestones):
        raise ConfigError(f"{key}.milestones: expected increasing epochs, got {milestones}")


def describe(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The probe behind a metrics file, in words (for the tables)."""
    s = settings
    milestones = ", ".join(map(str, s["milestones"]))
    schedule = f"SGD lr {s['lr']:g}, {s['epochs']} epochs (x0.1 at {milestones}), batch {s['batch_size']}"
    crop = f"RandomResizedCrop({s['image_size']}) + flip"
    # metrics files written before the setting existed reported the last epoch
    if s.get("report", "last") == "best":
        reported = f"; the best val top-1 of the {s['epochs']} epochs, as MoCo's main_lincls reports it"
    else:
        reported = "; the last epoch's val top-1, not MoCo's best of the epochs"
    if s["protocol"] == "moco":
        return (
            f"MoCo's linear protocol on the frozen backbone: {schedule}, a new {crop} view of each image every "
            f"epoch{reported}"
        )
    return (
        f"the fast linear protocol, not MoCo's: MoCo's optimiser and schedule ({schedule}), each epoch's view of an "
        f"image drawn from {s['views']} {crop} views whose features were computed once{reported}"
    )
