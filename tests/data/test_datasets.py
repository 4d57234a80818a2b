import shutil
import tarfile

import av
import numpy as np
import pytest
import scipy.io
import torch

from cycle_pkg.data.got10k import got10k_meta, got10k_sequences
from cycle_pkg.data.imagenet import convert_flat_val, imagefolder_samples, imagenet100_wnids
from cycle_pkg.data.otb import otb_folders, otb_sequences
from cycle_pkg.data.synthetic.motion import MOTIONS, action_path, mask_box
from cycle_pkg.data.ucf101 import centred_clips, clip_frames, linspace_frames, read_split, read_video
from cycle_pkg.errors import DatasetError
from cycle_pkg.eval.tracking.train import visible
from cycle_pkg.settings.config import load_config

from ..helpers import PARAMS

WORLD = load_config(PARAMS, "test").world


# UCF101


def test_world_ucf101_has_the_official_split_files(world):
    lists = world / "ucf101" / "ucfTrainTestlist"
    class_lines = (lists / "classInd.txt").read_bytes().split(b"\r\n")[:-1]
    names = [line.decode().split(" ")[1] for line in class_lines]
    assert [line.decode().split(" ")[0] for line in class_lines] == [str(i) for i in range(1, len(names) + 1)]
    assert names == sorted(names) and len(names) == WORLD.classes * WORLD.ucf101_motions
    first_train = (lists / "trainlist01.txt").read_text().splitlines()[0]
    assert first_train.rstrip("\r") == f"{names[0]}/v_{names[0]}_g02_c01.avi 1"  # g01 is the test group
    assert (lists / "testlist01.txt").read_text().splitlines()[0].rstrip("\r") == f"{names[0]}/v_{names[0]}_g01_c01.avi"


def test_read_split_gives_zero_based_labels_and_group_disjoint_sets(world):
    classes, train, test = read_split(world / "ucf101", 1)
    assert len(classes) == WORLD.classes * WORLD.ucf101_motions
    per_class = WORLD.ucf101_clips
    assert len(test) == len(classes) * per_class and len(train) == len(classes) * per_class * (WORLD.ucf101_groups - 1)
    assert {label for _, label in train} == set(range(len(classes)))
    for path, label in train + test:
        assert path.parent.name == classes[label] and path.is_file()
    assert all("_g01_" in p.name for p, _ in test) and not any("_g01_" in p.name for p, _ in train)


def test_read_video_decodes_the_xvid_avi(world):
    _, train, _ = read_split(world / "ucf101")
    frames, fps = read_video(train[0][0])
    assert frames.dtype == torch.uint8 and frames.shape == (
        WORLD.ucf101_frames,
        WORLD.frame_height,
        WORLD.frame_width,
        3,
    )
    assert fps == 25.0
    with av.open(str(train[0][0])) as container:
        assert container.format.name == "avi" and container.streams.video[0].codec_context.codec_tag == "XVID"
    assert frames.float().std() > 10  # a picture, not a blank


def test_broken_videos_and_split_files_are_named(world, tmp_path):
    root = tmp_path / "ucf"
    shutil.copytree(world / "ucf101", root)
    classes, train, _ = read_split(root)
    data = train[0][0].read_bytes()
    train[0][0].write_bytes(data[:300])
    with pytest.raises(DatasetError, match=train[0][0].name):
        read_video(train[0][0])
    train[1][0].unlink()
    with pytest.raises(DatasetError, match=r"1 of the \d+ videos of split 1 are missing.*cycle data ucf101"):
        read_split(root)
    lines = (root / "ucfTrainTestlist" / "trainlist01.txt").read_text().splitlines()
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text(lines[0].replace(" 1", " 2") + "\n")
    with pytest.raises(DatasetError, match=r"trainlist01.txt:1: label 2 contradicts"):
        read_split(root)
    with pytest.raises(DatasetError, match="split files are missing"):
        read_split(tmp_path / "nowhere")


def test_motion_classes_move_as_named():
    rng = np.random.default_rng(0)
    path = {m: action_path(m, rng, 20, 96, 128, 32) for m in MOTIONS}
    assert path["Left"][-1].center[0] < path["Left"][0].center[0] - 20
    assert path["Right"][-1].center[0] > path["Right"][0].center[0] + 20
    assert path["Up"][-1].center[1] < path["Up"][0].center[1] - 15
    assert path["Grow"][-1].radius > 1.5 * path["Grow"][0].radius
    assert path["Shrink"][-1].radius < 0.7 * path["Shrink"][0].radius


def test_frame_and_clip_sampling():
    assert linspace_frames(100, 10).tolist() == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    clips = centred_clips(100, 16, 3)  # centres at 8, 50, 92
    assert clips[:, 0].tolist() == [0, 42, 84] and clips[:, -1].tolist() == [15, 57, 99]
    assert (np.diff(clips, axis=1) == 1).all()
    assert centred_clips(10, 16, 2)[0].tolist() == list(range(10)) + [9] * 6  # too short: the end repeats
    test_clips = clip_frames(100, 25.0, 8, 16.0, 3)  # 8 frames at 16 fps from 25 fps: steps of 1.5625
    assert test_clips[0].tolist() == [0, 1, 3, 4, 6, 7, 9, 10]
    assert test_clips[-1, 0] == 88 and test_clips[-1, -1] == 99  # the last clip ends on the last frame
    generator = torch.Generator().manual_seed(0)
    random_clips = clip_frames(100, 25.0, 8, 16.0, 10, generator=generator)
    assert random_clips.min() >= 0 and random_clips.max() <= 99 and len({tuple(c) for c in random_clips}) > 5
    again = clip_frames(100, 25.0, 8, 16.0, 10, generator=torch.Generator().manual_seed(0))
    assert (again == random_clips).all()
    # 2 s at 16 fps from a 1.2 s video (30 frames at 25 fps): the 20 frames it has at 16 fps, then again
    short = clip_frames(30, 25.0, 32, 16.0, 2)
    has = [0, 1, 3, 4, 6, 7, 9, 10, 12, 14, 15, 17, 18, 20, 21, 23, 25, 26, 28, 29]
    assert short.tolist() == [has + has[:12]] * 2


# Tracking


def test_world_otb_reads_as_otb2015_with_its_quirks(world):
    sequences = {name: (files, boxes) for name, files, boxes in otb_sequences(world / "otb")}
    assert len(sequences) == 100 and len(otb_folders()) == 98
    assert {"Jogging.1", "Jogging.2", "Skating2.1", "Skating2.2", "Human4"} <= set(sequences)
    david_files, david_boxes = sequences["David"]
    assert len(david_files) == len(david_boxes) == 471 and david_files[0].name == "0300.jpg"
    assert len(list((world / "otb" / "David" / "img").iterdir())) == 770
    football_files, _ = sequences["Football1"]
    assert len(football_files) == 74 < len(list((world / "otb" / "Football1" / "img").iterdir()))
    assert sequences["Board"][0][0].name == "00001.jpg"
    assert "\t" in (world / "otb" / otb_folders()[1] / "groundtruth_rect.txt").read_text()  # delimiters vary
    for files, boxes in sequences.values():
        assert boxes.shape == (len(files), 4) and (boxes[:, 2:] > 0).all()
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= WORLD.frame_width).all()
    jog1, jog2 = sequences["Jogging.1"][1], sequences["Jogging.2"][1]
    assert not np.array_equal(jog1, jog2)  # two targets


def test_otb_layout_errors_are_named(world, tmp_path):
    root = tmp_path / "otb"
    shutil.copytree(world / "otb", root)
    shutil.rmtree(root / "Basketball")
    with pytest.raises(
        DatasetError, match=r"1 of the 98 OTB-2015 sequence folders are missing \(e.g. Basketball\).*cycle data otb"
    ):
        otb_sequences(root)
    shutil.copytree(world / "otb" / "Basketball", root / "Basketball")
    next(iter(sorted((root / "Bolt" / "img").iterdir()))).unlink()
    with pytest.raises(DatasetError, match=r"Bolt/groundtruth_rect.txt: the boxes do not fit the frames of Bolt"):
        otb_sequences(root)


def test_world_got10k_reads_with_the_toolkit(world):
    train = got10k_sequences(world / "got10k", "train")
    assert [name for name, _, _ in train] == [f"GOT-10k_Train_{i:06d}" for i in range(1, WORLD.got10k_sequences[0] + 1)]
    name, files, boxes = train[0]
    assert files[0].name == "00000001.jpg" and boxes.shape == (WORLD.got10k_frames, 4)
    test = got10k_sequences(world / "got10k", "test")
    assert len(test) == WORLD.got10k_sequences[2] and all(b.shape == (1, 4) for _, _, b in test)
    meta = got10k_meta(world / "got10k", "val")
    first = meta["GOT-10k_Val_000001"]
    assert (first["cover"] == 8).all() and (first["absence"] == 0).all() and len(first["cover"]) == WORLD.got10k_frames
    assert " " in first["object_class"]  # "<pattern> <shape>"


def test_world_got10k_covers_exercise_the_visibility_filter(world):
    """Of every six training sequences two are swept by an occluder and one curtained after its first
    frame: SiamFC's filter drops the swept frames below 30% in view, and the curtained sequence."""
    meta = got10k_meta(world / "got10k", "train")
    covers = [meta[f"GOT-10k_Train_{n:06d}"]["cover"] for n in range(1, 7)]
    absences = [meta[f"GOT-10k_Train_{n:06d}"]["absence"] for n in range(1, 7)]
    assert all((c == 8).all() for c in (covers[0], covers[2], covers[3]))
    for swept in (covers[1], covers[4]):
        assert swept.max() == 8 and swept.min() < 3 and (swept == 8).sum() >= 2  # partly hidden, in view before
    assert covers[5].tolist() == [8] + [0] * (WORLD.got10k_frames - 1)
    assert (absences[5] == (covers[5] == 0)).all() and not absences[0].any()
    assert [int(visible(c).sum() >= 2) for c in covers] == [1, 1, 1, 1, 1, 0]


def test_got10k_errors_say_what_to_do(world, tmp_path):
    with pytest.raises(DatasetError, match="list.txt not found.*registration"):
        got10k_sequences(tmp_path, "train")
    root = tmp_path / "got"
    shutil.copytree(world / "got10k", root)
    shutil.rmtree(root / "val" / "GOT-10k_Val_000002")
    with pytest.raises(DatasetError, match="1 of the 3 sequences in list.txt have no folder"):
        got10k_sequences(root, "val")
    (root / "train" / "GOT-10k_Train_000001" / "cover.label").unlink()
    with pytest.raises(DatasetError, match="cover.label: missing"):
        got10k_meta(root, "train")


def test_mask_box_is_the_extent_of_the_covered_pixels():
    coverage = np.zeros((10, 12))
    coverage[2:5, 3:9] = 1.0
    coverage[6, 3] = 0.4  # less than half covered: outside
    assert mask_box(coverage).tolist() == [3, 2, 6, 3]
    assert mask_box(np.zeros((4, 4))) is None


# ImageNet


def test_imagefolder_samples_and_the_imagenet100_subset(world, caplog):
    samples, classes = imagefolder_samples(world / "imagenet", "train")
    assert classes == sorted(classes) and len(classes) == WORLD.classes
    assert len(samples) == WORLD.classes * WORLD.images_per_class
    assert all(path.parent.name == classes[label] for path, label in samples)
    in100 = imagenet100_wnids()
    assert len(in100) == 100 and in100[0].startswith("n")
    sub_samples, sub_classes = imagefolder_samples(world / "imagenet", "val", in100)
    assert sub_classes == sorted(set(in100) & set(classes)) and 0 < len(sub_classes) < len(classes)
    assert {label for _, label in sub_samples} == set(range(len(sub_classes)))
    assert "97 of the 100 requested classes are absent" in caplog.text
    with pytest.raises(DatasetError, match="97 of the 100 requested classes have no folder"):
        imagefolder_samples(world / "imagenet", "val", in100, strict=True)


def flatten_val(world, tmp_path):
    """The world's val images in the flat ILSVRC2012 layout, and their true classes."""
    flat = tmp_path / "val"
    flat.mkdir()
    truth = {}
    for image in (world / "imagenet" / "val").rglob("*.JPEG"):
        shutil.copy(image, flat / image.name)
        truth[image.name] = image.parent.name
    return flat, truth


def sorted_classes(folder):
    return {p.name: p.parent.name for p in folder.rglob("*.JPEG")}


def number(name):
    return int(name.split("_")[-1].split(".")[0])


def test_flat_val_is_sorted_with_every_labels_format(world, tmp_path):
    flat, truth = flatten_val(world, tmp_path)
    with pytest.raises(DatasetError, match="flat ILSVRC2012 val layout.*cycle data imagenet-val"):
        imagefolder_samples(tmp_path, "val")
    wnids = sorted(set(truth.values()))
    last = max(map(number, truth))
    wnid_of_number = {number(name): wnid for name, wnid in truth.items()}
    by_line = [wnid_of_number.get(n, wnids[0]) for n in range(1, last + 1)]  # line n: image n

    pairs = tmp_path / "labels.txt"
    pairs.write_text("".join(f"{name} {wnid}\n" for name, wnid in truth.items()))
    one_per_line = tmp_path / "synset_labels.txt"
    one_per_line.write_text("\n".join(by_line) + "\n")
    solution = tmp_path / "LOC_val_solution.csv"
    solution.write_text("ImageId,PredictionString\n" + "".join(f"{n[:-5]},{w} 1 2 30 40\n" for n, w in truth.items()))
    devkit = tmp_path / "ILSVRC2012_devkit_t12"
    (devkit / "data").mkdir(parents=True)
    ids = {wnid: 1 + i for i, wnid in enumerate(wnids)}
    synsets = np.array([(ids[w], w) for w in wnids], dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    scipy.io.savemat(devkit / "data" / "meta.mat", {"synsets": synsets})
    (devkit / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{ids[w]}\n" for w in by_line))
    with tarfile.open(tmp_path / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as archive:
        archive.add(devkit, arcname=devkit.name)

    for labels in (pairs, one_per_line, solution, devkit, tmp_path / "ILSVRC2012_devkit_t12.tar.gz"):
        out = tmp_path / f"sorted-{labels.name}"
        counts = convert_flat_val(flat, labels, out)
        assert sorted_classes(out) == truth, labels.name
        assert sum(counts.values()) == len(truth)
    convert_flat_val(flat, pairs, flat)  # in place
    assert sorted_classes(flat) == truth
    samples, classes = imagefolder_samples(tmp_path, "val")
    assert len(samples) == len(truth) and classes == wnids


def test_flat_val_without_a_label_for_every_image_is_refused(world, tmp_path):
    flat, truth = flatten_val(world, tmp_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{name} {wnid}\n" for name, wnid in list(truth.items())[1:]))
    with pytest.raises(DatasetError, match="no label for 1 images"):
        convert_flat_val(flat, labels, tmp_path / "out")
    assert not (tmp_path / "out").exists()
