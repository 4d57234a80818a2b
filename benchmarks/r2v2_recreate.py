"""The CPU side of re-creating R2V2: taking a video's four listed frames out of a YouTube-like
download, by seeking to the key frame before each one (what ``cycle data r2v2 --recreate`` does)
against decoding the video from its start up to the last listed frame, then cutting borders,
resizing and JPEG-encoding them; measured in one run.

    python -m benchmarks.r2v2_recreate [--frames 3000] [--listed 1199,1349,1499,1649] \\
        [--out benchmarks/results/r2v2_recreate_cpu.json]

The video is what yt-dlp's default format fetches from YouTube for a 16:9 video (the stream of at
most 480 px height): H.264 at 854 x 480, 30 frames/s, a key frame every 150 frames (5 s), B-frames,
of a moving textured scene with sensor noise, so that its bit rate is a real video's rather than a
flat drawing's. The listed frames default to R2V2's usual spacing (150 apart). Each way is timed
several times in alternation; the best time counts. Network time is not part of it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.record import arguments, write_result
from cycle_pkg.data.r2v2_recreate.frames import frame_jpegs, read_frames

R2V2_VIDEOS = 696_082 + 55_631  # train and val


def write_video(path: Path, frames: int, width: int, height: int, gop: int) -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8 + 1, (width + frames) // 8 + 1, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), np.uint8))  # blocks of 8 px: edges for the encoder to keep
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "preset": "veryfast", "crf": "23"}
        for number in range(frames):
            picture = texture[:height, number : number + width].astype(np.int16)  # the scene pans 1 px a frame
            picture += rng.integers(-2, 3, picture.shape, dtype=np.int16)
            frame = av.VideoFrame.from_ndarray(np.clip(picture, 0, 255).astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def decode_from_start(path: Path, listed: list[int]) -> int:
    """The listed frames by decoding every frame up to the last one; returns the frames decoded."""
    wanted, decoded = set(listed), 0
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            if decoded in wanted:
                frame.to_ndarray(format="rgb24")
            decoded += 1
            if decoded > max(listed):
                break
    return decoded


def best_of(repeats: int, *calls) -> list[float]:
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("--frames", type=int, default=3000, help="length of the video (100 s at 30 frames/s)")
    parser.add_argument("--listed", default="1199,1349,1499,1649", help="the video's listed frame numbers")
    parser.add_argument("--size", default="854x480")
    parser.add_argument("--gop", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    listed = [int(n) for n in args.listed.split(",")]
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        write_video(path, args.frames, width, height, args.gop)
        decoded = read_frames(path, listed)
        assert sorted(decoded.frames) == listed, "the benchmark video is shorter than its listed frames"
        seek, start, post = best_of(
            args.repeats, lambda: read_frames(path, listed), lambda: decode_from_start(path, listed),
            lambda: frame_jpegs(decoded),
        )  # fmt: skip
        result = {
            "video": {"size": args.size, "frames": args.frames, "gop": args.gop, "bytes": path.stat().st_size},
            "listed": listed,
            "frames_decoded": {"seeking": decoded.decoded, "from_start": decode_from_start(path, listed)},
            "seconds_per_video": {"seeking": seek, "from_start": start, "border_resize_jpeg": post},
            "speedup": start / seek,
            "core_hours_for_r2v2": {
                "seeking": (seek + post) * R2V2_VIDEOS / 3600,
                "from_start": (start + post) * R2V2_VIDEOS / 3600,
            },
        }
    return write_result(result, args.out, began)


if __name__ == "__main__":
    sys.exit(main() and 0)
