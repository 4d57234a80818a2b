"""The parts of R2V2's re-creation on their own: frame-accurate decoding, the border cut and resize,
what a yt-dlp message means, and the ledger's commit when a run dies in the middle of one."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from cycle_pkg.data.r2v2_recreate.fetch import classify
from cycle_pkg.data.r2v2_recreate.frames import VideoError, content_box, fit, frame_jpegs, read_frames
from cycle_pkg.data.r2v2_recreate.ledger import Ledger, Record, stage_frames
from cycle_pkg.data.r2v2_recreate.recreate import Fetching, recreate
from cycle_pkg.errors import ConfigError, DatasetError

from ..helpers.coded_video import read_code, write_coded_video
from .test_recreate import FORMAT


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("coded")
    return {
        "gop50": write_coded_video(root / "gop50.mp4", 200, gop=50),
        "gop300": write_coded_video(root / "gop300.mp4", 300, gop=300),
    }


def numbers(decoded) -> dict[int, int]:
    return {n: read_code(image) for n, image in decoded.frames.items()}


def test_listed_frames_are_decoded_exactly_by_seeking_to_the_key_frame_before(videos):
    decoded = read_frames(videos["gop50"], [0, 37, 50, 149, 199])
    assert numbers(decoded) == {0: 0, 37: 37, 50: 50, 149: 149, 199: 199} and decoded.missing == ()
    alone = read_frames(videos["gop50"], [190])
    assert numbers(alone) == {190: 190} and alone.decoded <= 45  # from the key frame at 150, not from 0


def test_key_frames_far_apart_still_give_the_exact_frames(videos):
    decoded = read_frames(videos["gop300"], [1, 149, 298])
    assert numbers(decoded) == {1: 1, 149: 149, 298: 298}
    assert decoded.decoded == 2 + 150 + 299  # each one decoded forward from the only key frame


def test_frames_past_the_end_are_missing(videos):
    decoded = read_frames(videos["gop50"], [150, 199, 200, 260])
    assert numbers(decoded) == {150: 150, 199: 199} and decoded.missing == (200, 260)


def test_a_truncated_download_is_a_video_error(videos, tmp_path):
    data = videos["gop50"].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the index (moov) comes last: gone
    with pytest.raises(VideoError, match="cannot open the video"):
        read_frames(tmp_path / "cut.mp4", [1])


def test_the_shared_black_border_is_cut_as_the_authors_cut_it():
    frames = [np.full((10, 12, 3), 120, np.uint8) for _ in range(3)]
    for frame in frames:
        frame[:2] = 0  # two black rows at the top
        frame[:, 11] = 9  # a last column below the threshold of 10
        frame[:, 5] = 0  # an inner black column stays
    frames[1][9, :] = 0  # the bottom row is black in one frame only: not border
    frames[2][0, 3] = (0, 0, 10)  # one channel at 10 in one frame: the top row is not border
    assert content_box(frames) == (slice(0, 10), slice(0, 11))
    frames[2][0, 3] = 0
    assert content_box(frames) == (slice(2, 10), slice(0, 11))
    assert content_box([np.zeros((4, 4, 3), np.uint8)]) == (slice(None), slice(None))  # all black: kept whole


def test_frames_are_resized_to_480_on_their_long_side_never_enlarged():
    assert fit(np.zeros((360, 640, 3), np.uint8)).size == (480, 270)
    assert fit(np.zeros((640, 360, 3), np.uint8)).size == (270, 480)
    assert fit(np.zeros((200, 300, 3), np.uint8)).size == (300, 200)


def test_a_letterboxed_video_comes_out_without_its_bars_and_resized(tmp_path):
    path = write_coded_video(tmp_path / "wide.mp4", 60, size=(640, 272), border=(48, 0))
    jpegs = frame_jpegs(read_frames(path, [3, 59]))
    images = {n: np.asarray(Image.open(io.BytesIO(data))) for n, data in jpegs.items()}
    assert {n: image.shape for n, image in images.items()} == {3: (204, 480, 3), 59: (204, 480, 3)}
    assert {n: read_code(image) for n, image in images.items()} == {3: 3, 59: 59}


@pytest.mark.parametrize(
    "message, kind, cause",
    [
        ("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found", "gone", "not found"),
        ("ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader", "gone", "removed"),
        ("ERROR: [youtube] x: Private video. Sign in if you've been granted access to this video", "gone", "private"),
        (
            "ERROR: [youtube] x: Video unavailable. This video is no longer available because the YouTube account "
            "associated with this video has been terminated.",
            "gone",
            "account terminated",
        ),
        (
            "ERROR: [youtube] x: The uploader has not made this video available in your country",
            "gone",
            "geo-blocked",
        ),
        (
            "ERROR: [youtube] x: Video unavailable. This video contains content from SME, who has blocked it in your "
            "country on copyright grounds",
            "gone",
            "geo-blocked",
        ),
        ("ERROR: [youtube] x: Join this channel to get access to members-only content", "gone", "members only"),
        (
            "ERROR: [youtube] x: Sign in to confirm your age. This video may be inappropriate",
            "refused",
            "age-restricted",
        ),
        ("ERROR: [youtube] x: Requested format is not available. Use --list-formats", "refused", "no matching format"),
        ("ERROR: [youtube] x: Sign in to confirm you're not a bot. Use --cookies", "throttled", "bot check"),
        (
            "ERROR: [youtube] x: Video unavailable. This content isn't available, try again later.",
            "throttled",
            "rate limited",
        ),
        ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", "throttled", "too many requests"),
        ("ERROR: [download] Got error: 4242 bytes read, 4242 more expected", "transient", "download"),
        ("ERROR: unable to download video data: HTTP Error 503: Service Unavailable", "transient", "download"),
    ],
)
def test_yt_dlp_messages_are_sorted_by_what_they_ask_for(message, kind, cause):
    error = classify(message)
    assert (error.kind, error.cause) == (kind, cause) and not error.reason.startswith("ERROR")


def test_a_run_killed_between_a_videos_renames_is_undone_on_resume(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path, "train")
    stage_frames(ledger.staging("abcdefghijk"), {1: b"a", 149: b"b", 299: b"c"})
    renames = []

    def dies_on_the_third(src, dst):
        if len(renames) == 2:
            raise KeyboardInterrupt  # as if killed
        renames.append(dst)
        os.rename(src, dst)

    monkeypatch.setattr("cycle_pkg.data.r2v2_recreate.ledger.os.replace", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        ledger.commit(Record("abcdefghijk", "recreated", frames=(1, 149, 299)))
    monkeypatch.undo()
    folder = tmp_path / "train" / "ab"
    assert sorted(p.name for p in folder.iterdir()) == ["abcdefghijk_000001.jpg", "abcdefghijk_000149.jpg"]
    (folder / "abxxxxxxxxx_000001.jpg").write_bytes(b"another video's frame")

    resumed = Ledger(tmp_path, "train")
    assert resumed.records == {} and resumed.recover() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["abxxxxxxxxx_000001.jpg"]
    assert not resumed.staging("abcdefghijk").exists()


def test_a_cut_last_ledger_line_is_ignored_and_any_other_bad_line_is_an_error(tmp_path):
    ledger = Ledger(tmp_path, "train")
    ledger.commit(Record("abcdefghijk", "gone", "private", "Private video"))
    with open(ledger.path, "a") as handle:
        handle.write('{"video_id": "bcdefghijkl", "sta')
    assert list(Ledger(tmp_path, "train").records) == ["abcdefghijk"]
    ledger.path.write_text('{"video_id": "x"\n' + ledger.path.read_text())
    with pytest.raises(DatasetError, match=r"train.jsonl:1: not a re-creation record"):
        Ledger(tmp_path, "train")


def youtube_formats() -> list[dict]:
    """What YouTube lists for a 16:9 video (the ids and codecs its extractor reports)."""
    listed = [("140", "m4a", None, "none", "mp4a.40.2"), ("160", "mp4", 144, "avc1.4d400c", "none"),
              ("133", "mp4", 240, "avc1.4d4015", "none"), ("134", "mp4", 360, "avc1.4d401e", "none"),
              ("135", "mp4", 480, "avc1.4d401f", "none"), ("136", "mp4", 720, "avc1.4d401f", "none"),
              ("243", "webm", 360, "vp9", "none"), ("244", "webm", 480, "vp9", "none"),
              ("18", "mp4", 360, "avc1.42001E", "mp4a.40.2")]  # fmt: skip
    keys = ("format_id", "ext", "height", "vcodec", "acodec")
    formats = [dict(zip(keys, row, strict=True), protocol="https") for row in listed]
    for f in formats:
        f.update(width=f["height"] and round(f["height"] * 16 / 9), url=f"https://example.invalid/{f['format_id']}")
    return formats


@pytest.mark.parametrize(
    "formats, chosen",
    [
        (youtube_formats(), "135"),  # the 854 x 480 H.264 stream: no audio, so nothing to merge (no ffmpeg)
        ([f for f in youtube_formats() if f["format_id"] in ("136", "140")], "136"),  # nothing at 480: the smallest
    ],
)
def test_the_default_format_takes_youtubes_480p_video_stream(formats, chosen):
    import yt_dlp

    ydl = yt_dlp.YoutubeDL({"format": FORMAT, "quiet": True, "simulate": True})
    video = {"id": "abcdefghijk", "title": "t", "formats": formats, "extractor": "youtube", "extractor_key": "Youtube",
             "webpage_url": "https://www.youtube.com/watch?v=abcdefghijk", "_type": "video"}  # fmt: skip
    assert ydl.process_ie_result(video, download=False)["format_id"] == chosen


def test_wrong_settings_are_errors_before_any_download(tmp_path):
    with pytest.raises(ConfigError, match=r"data.r2v2_video_url 'https://x/\{video\}': expected a URL with \{id\}"):
        Fetching("https://x/{video}", FORMAT)
    with pytest.raises(ConfigError, match=r"data.r2v2_cookies: .*cookies.txt: no such file"):
        Fetching("https://x/{id}", FORMAT, cookies=str(tmp_path / "cookies.txt"))


def test_a_copy_that_was_not_re_created_here_is_left_alone(world, tmp_path):
    with pytest.raises(DatasetError, match="holds a copy of R2V2 that was not re-created here"):
        recreate(world / "r2v2", {"train": str(world / "r2v2" / "r2v2_ids_train.txt")}, Fetching("x/{id}", FORMAT),
                 tmp_path)  # fmt: skip
