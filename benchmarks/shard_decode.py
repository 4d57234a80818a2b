"""Pretraining input throughput: R2V2 frames decoded (and augmented) per second and per core, read
from shards of pre-resized frames vs from the original loose JPEGs, measured in one run.

    python -m benchmarks.shard_decode [--videos 150] [--short-side 256] [--device cuda] \\
        [--out benchmarks/results/shard_decode_cuda.json]

The loose frames are R2V2-sized (480 x 360, the largest R2V2 frames) synthetic-world frames with
mild sensor noise, so that their JPEGs have natural images' sizes rather than those of flat
drawings; the shards hold the same frames with the short side resized. Both paths run the
pretraining reader itself (VideoPairs on the loose files, ShardPairs on the shards) in one process
with one thread, each timed several times in alternation; the best time counts. The device data
path's work (the shard stream handing over bytes and parameters, the batch decoded and augmented
in one pass by batch_augment) is timed on the same CPU thread beside them. With
``--device cuda`` the same frames are also decoded on the GPU (torchvision's nvJPEG, batched).
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.io import decode_jpeg, read_file

from benchmarks.record import arguments, device_name, write_result
from cycle_pkg.data.augment import moco_v2
from cycle_pkg.data.batch_augment import decode_and_augment
from cycle_pkg.data.pairs import PairMaker, VideoPairs
from cycle_pkg.data.r2v2 import load_videos
from cycle_pkg.data.shards import read_index, read_samples, write_shards
from cycle_pkg.data.stream import ShardPairs, decode_frame, encode_frame
from cycle_pkg.data.synthetic import latent_classes
from cycle_pkg.data.synthetic.images import write_r2v2
from cycle_pkg.settings.sections import WorldConfig


def make_loose_frames(root: Path, videos: int, noise: float) -> None:
    world = WorldConfig(root=str(root), videos=videos, frame_height=360, frame_width=480)
    write_r2v2(root, "train", videos, world, latent_classes(world.classes, world.seed))
    rng = np.random.default_rng(0)
    for path in sorted((root / "train").rglob("*.jpg")):
        image = np.asarray(Image.open(path), dtype=np.float32)
        noisy = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(noisy).save(out, format="JPEG", quality=90)
        path.write_bytes(out.getvalue())


def main(argv: list[str] | None = None) -> dict:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--videos", type=int, default=150)
    parser.add_argument("--short-side", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224, help="augmentation output (the paper's 224)")
    parser.add_argument("--noise", type=float, default=8.0, help="sensor noise added to the frames (grey levels)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cuda: also time GPU decoding")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root, shard_root = Path(tmp) / "r2v2", Path(tmp) / "shards"
        make_loose_frames(root, args.videos, args.noise)
        start = time.perf_counter()
        write_shards(root, shard_root, "train", None, 1000, args.short_side, 90, progress=False)
        shard_seconds = time.perf_counter() - start
        videos = load_videos(root, "train")
        files = [path for video in videos for path in video]
        index = read_index(shard_root)
        frames_total = len(files)
        loose_bytes = sum(p.stat().st_size for p in files)
        shard_bytes = sum(s.path.stat().st_size for s in index.shards)

        def loose_decode() -> None:
            for path in files:
                decode_jpeg(read_file(str(path)))

        def shard_decode() -> None:
            for shard in index.shards:
                for sample in read_samples(shard.path, 0, shard.videos):
                    for frame in sample.frames:
                        decode_frame(frame)

        transform = moco_v2(args.image_size)
        pairs = VideoPairs(videos, transform)
        stream = ShardPairs(index, PairMaker(transform, reader=decode_frame), streams=1, buffer=64, seed=0)
        stream.schedule(len(videos), 0, 1, 0, 1, 0)  # one step: every video once

        def loose_pairs() -> None:
            for number in range(len(videos)):
                pairs[(0, number)]

        def shard_pairs() -> None:
            for _ in stream:
                pass

        # the device path's work on this CPU: the stream hands over bytes and parameters, the batch
        # (every video once) is decoded and augmented in one pass
        encoded = ShardPairs(
            index, PairMaker(transform, reader=encode_frame, encoded=True), streams=1, buffer=64, seed=0
        )
        encoded.schedule(len(videos), 0, 1, 0, 1, 0)

        def shard_pairs_batched() -> None:
            for batch in encoded:
                decode_and_augment(batch, torch.device("cpu"), args.image_size)

        runs = {"loose_decode": loose_decode, "shard_decode": shard_decode}
        runs.update(loose_decode_augment=loose_pairs, shard_decode_augment=shard_pairs)
        runs.update(shard_decode_augment_batched=shard_pairs_batched)
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # alternate, so that a busy moment hits both paths alike
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
        best = {name: min(times) for name, times in seconds.items()}
        # decode: every frame; decode + augment: two frames per video, each decoded and augmented once
        rates = {
            "loose_decode": frames_total / best["loose_decode"],
            "shard_decode": frames_total / best["shard_decode"],
            "loose_decode_augment": 2 * len(videos) / best["loose_decode_augment"],
            "shard_decode_augment": 2 * len(videos) / best["shard_decode_augment"],
            "shard_decode_augment_batched": 2 * len(videos) / best["shard_decode_augment_batched"],
        }
        result = {
            "videos": len(videos),
            "frames": frames_total,
            "loose_frame_size": "480x360",
            "shard_short_side": args.short_side,
            "loose_kib_per_frame": loose_bytes / frames_total / 1024,
            "shard_kib_per_frame": shard_bytes / frames_total / 1024,
            "sharding_frames_per_second": frames_total / shard_seconds,
            "frames_per_second_per_core": rates,
            "ratio_decode": rates["shard_decode"] / rates["loose_decode"],
            "ratio_decode_augment": rates["shard_decode_augment"] / rates["loose_decode_augment"],
            "ratio_batched_augment": rates["shard_decode_augment_batched"] / rates["shard_decode_augment"],
        }
        if args.device.startswith("cuda"):
            result["gpu"] = gpu_decode(files, index, args.device, args.repeats)
    return write_result(result, args.out, began)


def gpu_decode(files: list[Path], index, device: str, repeats: int, batch: int = 128) -> dict:
    """Frames/s decoded on the GPU (nvJPEG) in batches, from the loose files and from the shards; the
    bytes are read beforehand, so this is the decoder's throughput alone."""
    loose = [read_file(str(path)) for path in files]
    sharded = [
        torch.frombuffer(bytearray(frame.data), dtype=torch.uint8)
        for shard in index.shards
        for sample in read_samples(shard.path, 0, shard.videos)
        for frame in sample.frames
    ]

    def decode_all(data: list[torch.Tensor]) -> None:
        for start in range(0, len(data), batch):
            decode_jpeg(data[start : start + batch], device=device)
        torch.cuda.synchronize(device)

    decode_all(loose[:batch])  # warm-up: nvJPEG's handles and buffers
    seconds: dict[str, list[float]] = {"loose": [], "shard": []}
    for _ in range(repeats):
        for name, data in (("loose", loose), ("shard", sharded)):
            start = time.perf_counter()
            decode_all(data)
            seconds[name].append(time.perf_counter() - start)
    rates = {"loose": len(loose) / min(seconds["loose"]), "shard": len(sharded) / min(seconds["shard"])}
    return {
        "device": device_name(device),
        "frames_per_second": rates,
        "ratio": rates["shard"] / rates["loose"],
    }


if __name__ == "__main__":
    main(sys.argv[1:])
