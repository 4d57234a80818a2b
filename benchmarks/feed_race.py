"""The device feed against a busy main stream: does nvJPEG overwrite memory the feed still reads?

``torchvision.io.decode_jpeg(..., device="cuda")`` decodes on a stream of its own without waiting for
the caller's, so buffers that kernels queued on the feed's stream still read may be handed to the
decoder (``jpeg.decode_frames`` synchronises the feed's stream first). Here the training loop's own
feed prepares the batches ahead on its stream while the main stream is kept busy with matrix
products, and every batch must give the views of the same batch prepared one at a time on a quiet
device: the same subsampled pixels and sums, no NaN, no skipped frame. On the CPU the same code
runs (and cannot race).

    python -m benchmarks.feed_race --device cuda --scale paper --batches 20 \\
        --out benchmarks/results/feed_race_paper_cuda.json
"""

from __future__ import annotations

import dataclasses
import time

import torch

from benchmarks.pretrain_throughput import R2V2_FRAME, at_frame_size, r2v2_world
from benchmarks.record import ROOT, arguments, device_name, write_result
from cycle_pkg.settings.config import load_config


def fingerprint(views: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, float, bool]]:
    """Per view: every 7th pixel of every 7th row (on the host), the sum, whether any value is NaN."""
    return {
        name: (view[:, :, ::7, ::7].float().cpu(), float(view.double().sum()), bool(view.isnan().any()))
        for name, view in views.items()
    }


def busy(device: torch.device, size: int) -> None:
    """Queue a few large matrix products on the current (main) stream."""
    x = torch.randn(size, size, device=device)
    for _ in range(8):
        x = torch.nn.functional.normalize(x @ x, dim=1)


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--scale", default="paper")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, help="batch size (default: the scale's)")
    parser.add_argument("--matrix", type=int, default=4096, help="side of the main stream's matrix products")
    parser.add_argument("--frame-size", nargs=2, type=int, default=R2V2_FRAME, metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from cycle_pkg.data.feed import DeviceFeed
    from cycle_pkg.data.pretrain_input import pretrain_input
    from cycle_pkg.pretrain.loader import build_loader
    from cycle_pkg.pretrain.runtime import Runtime

    device = torch.device(args.device)
    overrides = ["mlflow.enabled=false", "pretrain.augment_on=device", *args.overrides]
    if args.batch:
        overrides.append(f"pretrain.batch_size={args.batch}")
    config = at_frame_size(load_config(ROOT / "params.yaml", args.scale, overrides), *args.frame_size)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, r2v2_format="jpeg"))
    r2v2_world(config.world)
    runtime = Runtime(0, 1, device)
    data = pretrain_input(config, device)
    loader = build_loader(data.dataset, config, runtime, 0, args.batches)
    # the reference: one batch at a time, nothing else queued
    quiet_feed = DeviceFeed(
        device, config.pretrain.image_size, encoded=data.feed.encoded, memory_format=data.feed.memory_format
    )
    quiet = [fingerprint(views) for views, _ in quiet_feed.views(loader)]
    started, mismatched, nans, skipped, worst = time.perf_counter(), [], 0, 0, 0.0
    for step, (views, lost) in enumerate(data.feed.views(loader)):
        busy(device, args.matrix)
        skipped += lost
        for name, (pixels, total, nan) in fingerprint(views).items():
            ref_pixels, ref_total, _ = quiet[step][name]
            difference = float((pixels - ref_pixels).abs().max())
            worst = max(worst, difference)
            nans += nan
            if difference > 1e-4 or abs(total - ref_total) > 1e-6 * max(1.0, abs(ref_total)):
                mismatched.append(f"{step}:{name}")
    result = {
        "device": device_name(device),
        "scale": args.scale,
        "batch": config.pretrain.batch_size,
        "frame_size": list(args.frame_size),
        "batches": len(quiet),
        "seconds": time.perf_counter() - started,
        "mismatched_views": mismatched,
        "views_with_nan": nans,
        "skipped_frames": skipped,
        "max_abs_difference": worst,
        "passed": not mismatched and nans == 0 and skipped == 0 and len(quiet) == args.batches,
    }
    write_result(result, args.out, began)
    if not result["passed"]:
        raise SystemExit("feed_race: the busy run's views differ from the quiet run's (see above)")


if __name__ == "__main__":
    main()
