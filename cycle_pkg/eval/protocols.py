"""Each evaluation's protocol in words, from the settings and metrics a metrics file records: what
the tables' headers say produced their numbers. Kept free of torch, so that a table job, which only
reads metrics files, starts in a second instead of importing the evaluations' modules."""

from __future__ import annotations

from typing import Any


def linear(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
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


def track(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The tracking protocol behind a metrics file, in words (for the tables)."""
    s = settings
    geometry = (
        f"the authors' response geometry (upsampled to {s['response_up']} x {s['response_size']} px whatever its size)"
        if s["response_geometry"] == "authors"
        else f"the exact response geometry (upsampled to {s['response_up']} x its size)"
    )
    subset = [f"its first {s['max_sequences']} targets"] if s.get("max_sequences") is not None else []
    subset += [f"their first {s['max_frames']} frames"] if s["max_frames"] is not None else []
    frames = f" ({', '.join(subset)})" if subset else ""
    return (
        f"SiamFC on the frozen stride-8 backbone, its head trained {s['epochs']} epochs on GOT-10k pairs of frames "
        f"that pass the authors' size, aspect and visibility filters, tracking OTB-2015{frames} with {geometry}"
    )


def action(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The action-recognition protocol behind a metrics file, in words (for the tables)."""
    s = settings
    # metrics files written before the setting existed kept the pretraining statistics
    if s.get("batch_norm", "eval") == "train":
        batch_norm = (
            f"BatchNorm in train mode as the authors' (groups of {s['batch_size']} clips, running statistics "
            "re-estimated on UCF101 and used at test)"
        )
    else:
        batch_norm = "BatchNorm with the pretraining statistics, not the authors' train mode"
    return (
        f"AVID-CMA's linear setting on the frozen backbone: {s['clip_frames']}-frame clips at {s['clip_fps']:g} fps, "
        f"features averaged over time, dropout {s['dropout']:g}, one linear layer; {batch_norm}; Adam lr {s['lr']:g}, "
        f"{s['warmup_epochs']} + {s['epochs']} epochs; {s['test_clips']} test clips per video averaged"
    )


def finetune(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The fine-tuning protocol behind a metrics file, in words (for Table 9's header)."""
    s = settings
    return (
        f"AVID-CMA's fine-tuning of the whole network: {s['clip_frames']}-frame clips at {s['clip_fps']:g} fps, "
        f"BatchNorm in train mode over groups of {s['bn_clips']} clips, dropout {s['dropout']:g}; Adam lr {s['lr']:g}, "
        f"{s['warmup_epochs']} classifier-only + {s['epochs']} epochs (x{s['lr_decay']:g} at {s['milestones']}); "
        f"video top-k on {s['test_clips']} averaged clips, clip top-k on {s['clip_test_clips']}"
    )


def retrieval(settings: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The retrieval protocol behind a metrics file, in words (for the tables)."""
    s = settings
    return (
        f"nearest neighbours by cosine similarity on the frozen backbone, test videos querying train videos: "
        f"{s['frames_per_video']} frames per video, or {s['clips_per_video']} clips of {s['clip_length']} frames, "
        "their features averaged per video"
    )
