"""The fine-tuning protocol's input cost per training clip at the paper's sizes (32 frames at 16 fps,
224 px) on one CPU thread, and where colour jitter is cheaper: in a loader process or on the device.

    python -m benchmarks.finetune_clips [--seconds 7.2] [--repeats 3] [--device cuda] \\
        [--out benchmarks/results/finetune_clips_cpu.json]

A UCF101-sized video (320 x 240 at 25 fps, UCF101's mean length of 7.2 s by default) is drawn by the
synthetic world's renderer with sensor noise, so that its MPEG-4 stream has a natural video's size
(about 430 KB; UCF101's 6.5 GB over 13,320 videos is 490 KB a video), and written as UCF101's XVID
AVI. Timed, best of ``--repeats``: decoding it (cycle_pkg.data.ucf101's reader), the loader's crop
and flip of one clip (TrainClips with crop_transform, what the fine-tuning runs in its loader
processes), and the clip's colour jitter and normalisation on the CPU; with ``--device cuda`` also on
the GPU, as the fine-tuning runs it there.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.record import arguments, device_name, write_result
from cycle_pkg.data.synthetic import latent_classes, new_instance
from cycle_pkg.data.synthetic.action import FPS, write_avi
from cycle_pkg.data.synthetic.motion import action_path, draw
from cycle_pkg.data.synthetic.scene import background
from cycle_pkg.data.ucf101 import read_video
from cycle_pkg.eval.action import TrainClips, colour_transform, crop_transform
from cycle_pkg.eval.finetune import FinetuneEvalConfig, apply_seeded
from cycle_pkg.settings.sections import WorldConfig


def write_video(path: Path, seconds: float, noise: float) -> int:
    rng = np.random.default_rng(0)
    latent = latent_classes(1, seed=0)[0]
    height, width, room = 240, 320, 80
    instance, scene = new_instance(latent, rng, WorldConfig().pattern_scale), background(rng, height, width + room)
    frames = []
    for pose in action_path("Left", rng, round(seconds * FPS), height, width, room):
        image = draw(instance, scene, pose, width)[0].astype(np.float32)
        frames.append(np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8))
    write_avi(path, frames)
    return len(frames)


def best(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--seconds", type=float, default=7.2, help="video length (UCF101's mean: 7.2 s)")
    parser.add_argument("--noise", type=float, default=2.0, help="sensor noise added to the frames (grey levels)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cuda: also time the colour jitter on the GPU")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = FinetuneEvalConfig()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v_Benchmark_g01_c01.avi"
        frames = write_video(path, args.seconds, args.noise)
        decode = best(args.repeats, lambda: read_video(path))
        video, fps = read_video(path)
        kilobytes = path.stat().st_size / 1024
    video = video.permute(0, 3, 1, 2)
    crop = TrainClips(cfg, 0, count=1, transform=crop_transform(cfg))
    loader = best(args.repeats, lambda: crop(video, fps, 0))
    clip = crop(video, fps, 0)[0]
    colour = colour_transform(cfg)
    on_cpu = best(args.repeats, lambda: apply_seeded(colour, clip, 0))
    result = {
        "video": {"frames": frames, "fps": fps, "size": [320, 240], "kilobytes": round(kilobytes, 1)},
        "clip": {"frames": cfg.clip_frames, "fps": cfg.clip_fps, "image_size": cfg.image_size},
        "seconds_per_clip_one_thread": {
            "decode_video": decode,
            "crop_and_flip": loader,
            "colour_jitter_and_normalize_cpu": on_cpu,
        },
    }
    if args.device == "cuda":
        on_gpu = clip.cuda()
        apply_seeded(colour, on_gpu, 0)  # warm-up
        torch.cuda.synchronize()

        def jitter_on_gpu() -> None:
            apply_seeded(colour, on_gpu, 0)
            torch.cuda.synchronize()

        result["seconds_per_clip_one_thread"]["colour_jitter_and_normalize_cuda"] = best(args.repeats, jitter_on_gpu)
        result["device"] = device_name("cuda")
    loader_cost = decode + loader
    result["loader_clips_per_second_per_core"] = 1 / loader_cost
    result["loader_clips_per_second_per_core_with_cpu_jitter"] = 1 / (loader_cost + on_cpu)
    return write_result(result, args.out, began)


if __name__ == "__main__":
    main(sys.argv[1:])
