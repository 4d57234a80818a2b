"""The synthetic world's GOT-10k-format part: train, val and test subsets of sequences whose targets
are instances of the world's latent classes, some passing behind an occluder, with GOT-10k's files
for each (the per-frame cover labels say how much of the target is in view)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...settings.sections import WorldConfig
from .occlusion import occlusion_of
from .scene import LatentClass
from .targets import sequence, write_frames


def write_got10k(root: Path, world: WorldConfig, classes: list[LatentClass]) -> None:
    """``<subset>/list.txt`` and ``<subset>/GOT-10k_<Subset>_<nnnnnn>/`` with frames, groundtruth.txt
    and, outside the test subset, meta_info.ini and the per-frame labels."""
    rng = np.random.default_rng([world.seed, 11])
    for subset, count in zip(("train", "val", "test"), world.got10k_sequences, strict=True):
        names = [f"GOT-10k_{subset.title()}_{number:06d}" for number in range(1, count + 1)]
        for number, name in enumerate(names):
            folder = root / subset / name
            images, (boxes,), (label,), covers = sequence(
                rng,
                classes,
                world.got10k_frames,
                world.frame_height,
                world.frame_width,
                world.pattern_scale,
                occlusion=occlusion_of(number),
            )
            write_frames(folder, images, digits=8)
            lines = boxes if subset != "test" else boxes[:1]
            (folder / "groundtruth.txt").write_text("".join(",".join(f"{v:.4f}" for v in box) + "\n" for box in lines))
            if subset == "test":
                continue
            latent = classes[label]
            (folder / "meta_info.ini").write_text(
                "[METAINFO]\n"
                f"url: synthetic://world-{world.seed}/{subset}/{name}\n"
                f"begin: 00:00:00\nend: 00:00:{len(images) // 10:02d}\nanno_fps: 10Hz\n"
                f"object_class: {latent.pattern} {latent.shape}\nmotion_class: wandering\n"
                f"major_class: {latent.shape}\nroot_class: object\nmotion_adverb: smoothly\n"
                f"resolution: ({world.frame_width}, {world.frame_height})\n"
            )
            # The targets stay inside the frame (never cut), some behind an occluder (see occlusion.py).
            labels = {"absence.label": covers == 0, "cover.label": covers, "cut_by_image.label": np.zeros_like(covers)}
            for label_file, values in labels.items():
                (folder / label_file).write_text("".join(f"{int(v)}\n" for v in values))
        (root / subset).mkdir(parents=True, exist_ok=True)
        (root / subset / "list.txt").write_text("\n".join(names) + "\n")
