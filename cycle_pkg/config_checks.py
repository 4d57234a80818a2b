"""Cross-field checks of the settings: what a type check cannot express (a queue that whole
batches fill, a neighbour set that leaves negatives, a SiamFC response map with negatives, ...).
Every message names the keys and what to change."""

from __future__ import annotations

import re

from .config import PAPER_GPUS, SIAMFC_STRIDE, Config, EvalConfig
from .errors import ConfigError

# A run's name is one folder under results/ (and a file name of its metrics): these characters, not . or ..
RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_run_name(name: str, where: str) -> str:
    """``name`` if it is a run name, else a ConfigError naming ``where`` it came from."""
    if not RUN_NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(
            f"{where} {name!r}: a run name is one folder under the results folder, made of letters, digits, "
            "'-', '_' and '.' (not '.' or '..')"
        )
    return name


def validate(config: Config) -> None:
    """Raise a ConfigError for settings that are each well-typed but do not fit together."""
    model, loss, pretrain = config.model, config.loss, config.pretrain
    validate_data(config)
    if loss.neighbors < 1:
        raise ConfigError("loss.neighbors: the neighbour set needs at least one element")
    if loss.components in ("intra_video+cycle", "cycle") and loss.neighbors >= model.cycle_queue:
        raise ConfigError(
            f"loss.neighbors ({loss.neighbors}) must be smaller than model.cycle_queue ({model.cycle_queue}): "
            "the rest of the cycle queue are the backward step's negatives"
        )
    if loss.topk is not None and not 1 <= loss.topk <= loss.neighbors:
        raise ConfigError(f"loss.topk ({loss.topk}) must lie in [1, loss.neighbors={loss.neighbors}]")
    for name in ("intra_queue", "cycle_queue"):
        size = getattr(model, name)
        if size % pretrain.batch_size:
            raise ConfigError(
                f"model.{name} ({size}) must be divisible by the global batch pretrain.batch_size "
                f"({pretrain.batch_size}) so that whole batches are enqueued"
            )
    if pretrain.batch_size < 1 or pretrain.epochs < 1:
        raise ConfigError("pretrain.batch_size and pretrain.epochs must be positive")
    group = model.key_bn_group_size(pretrain.batch_size)
    if group < 2 or pretrain.batch_size % group:
        what = (
            f"model.key_bn_group ({group})" if model.key_bn_group else f"pretrain.batch_size / {PAPER_GPUS} ({group})"
        )
        raise ConfigError(
            f"{what} must be at least 2 and divide pretrain.batch_size ({pretrain.batch_size}): keys are "
            "BatchNorm-ed in groups of that many samples; set model.key_bn_group to such a size"
        )
    if not 0 < model.bn_momentum <= 1:
        raise ConfigError(f"model.bn_momentum ({model.bn_momentum}) must lie in (0, 1]")
    validate_monitor(config)
    seeds = config.workflow.seeds
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"workflow.seeds: expected one or more different seeds, e.g. [0, 1, 2], got {seeds}")
    validate_eval(config.eval)
    for key in config.baselines:
        check_run_name(key, "baselines: the key")


def validate_monitor(config: Config) -> None:
    every, monitor = config.pretrain.monitor_every, config.pretrain.monitor
    if every < 0:
        raise ConfigError(f"pretrain.monitor_every ({every}) must be a number of steps, or 0 for no monitor")
    for name in ("bank_per_class", "queries_per_class", "k"):
        if getattr(monitor, name) < 1:
            raise ConfigError(f"pretrain.monitor.{name} must be at least 1")
    if monitor.temperature <= 0:
        raise ConfigError(f"pretrain.monitor.temperature ({monitor.temperature}) must be positive")
    if monitor.image_size is not None and monitor.image_size < 16:
        raise ConfigError(f"pretrain.monitor.image_size ({monitor.image_size}) must be at least 16, or null")


def validate_eval(cfg: EvalConfig) -> None:
    for name, schedule in (("linear", cfg.linear), ("action", cfg.action), ("finetune", cfg.finetune)):
        if schedule.milestones != sorted(schedule.milestones) or any(m < 1 for m in schedule.milestones):
            raise ConfigError(f"eval.{name}.milestones: expected increasing epochs >= 1, got {schedule.milestones}")
    if cfg.linear.views < 1:
        raise ConfigError("eval.linear.views: the fast protocol needs at least one view per training image")
    for name, clips in (("action", cfg.action), ("finetune", cfg.finetune)):
        if len(clips.color_jitter) != 4:
            raise ConfigError(f"eval.{name}.color_jitter: expected [brightness, contrast, saturation, hue]")
        if min(clips.clip_frames, clips.train_clips, clips.test_clips) < 1 or clips.warmup_epochs + clips.epochs < 1:
            raise ConfigError(f"eval.{name}: clip_frames, train_clips, test_clips and the epochs must be positive")
    finetune = cfg.finetune
    if not 1 <= finetune.bn_clips <= finetune.batch_size or finetune.clip_test_clips < 1:
        raise ConfigError(
            f"eval.finetune.bn_clips ({finetune.bn_clips}) must lie in [1, batch_size={finetune.batch_size}], "
            "and clip_test_clips be positive"
        )
    if len(cfg.retrieval.clip_resize) != 2:
        raise ConfigError("eval.retrieval.clip_resize: expected [height, width]")
    if not cfg.retrieval.topk or min(cfg.retrieval.topk) < 1:
        raise ConfigError("eval.retrieval.topk: expected a list of positive integers")
    track = cfg.track
    if track.max_frames is not None and track.max_frames < 2:
        raise ConfigError("eval.track.max_frames: a sequence needs at least 2 frames to track (or null for all)")
    if track.max_sequences is not None and track.max_sequences < 1:
        raise ConfigError("eval.track.max_sequences: expected a positive number of test sequences (or null for all)")
    if track.response_size < 1:
        raise ConfigError("eval.track.response_size: expected a positive number of response cells")
    if track.instance_size <= track.exemplar_size or track.scale_num % 2 == 0:
        raise ConfigError(
            "eval.track: instance_size must exceed exemplar_size, and scale_num must be odd (a centre scale)"
        )
    # The training response map must reach beyond the positive radius, or the loss has no negatives.
    response = track.training_response_size()
    if response <= 2 * int(track.r_pos // SIAMFC_STRIDE) + 1:
        raise ConfigError(
            f"eval.track: the training response map ({response}x{response} cells of {SIAMFC_STRIDE} px) lies within "
            f"r_pos={track.r_pos} px of its centre, so every cell is a positive: raise eval.track.instance_size "
            "(the paper scale has exemplar_size 120, instance_size 255) or lower r_pos"
        )


def validate_data(config: Config) -> None:
    data, world = config.data, config.world
    positive = (
        "r2v2_subset_videos", "r2v2_downloads_in_flight", "shard_videos", "shard_streams", "shard_buffer",
        "download_retries",
    )  # fmt: skip
    for name in positive:
        if getattr(data, name) < 1:
            raise ConfigError(f"data.{name} must be at least 1")
    if data.shard_short_side is not None and data.shard_short_side < 16:
        raise ConfigError(f"data.shard_short_side ({data.shard_short_side}) must be at least 16, or null")
    if not 1 <= data.shard_quality <= 100 or data.download_timeout <= 0:
        raise ConfigError("data.shard_quality must lie in [1, 100] and data.download_timeout be positive")
    workers = max(1, config.pretrain.workers)
    if data.r2v2_format == "shards" and data.shard_streams % workers:
        raise ConfigError(
            f"data.shard_streams ({data.shard_streams}) must be a multiple of pretrain.workers ({workers}) "
            "so that every loader process reads whole streams"
        )
    if "{name}" not in data.otb_url:
        raise ConfigError(f"data.otb_url ({data.otb_url}) must contain {{name}}, the sequence's name")
    if len(world.got10k_sequences) != 3 or min(world.got10k_sequences) < 1:
        raise ConfigError("world.got10k_sequences: expected three positive counts [train, val, test]")
