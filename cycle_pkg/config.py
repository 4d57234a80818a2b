"""Typed, validated configuration read from ``params.yaml``.

The effective configuration of a job is built in layers, each validated on its own so that an
error names the layer and the key: the dataclass defaults below (the paper's settings), the
top-level sections of ``params.yaml``, the active scale's section ``scales.<scale>``, then
command-line overrides ``key.sub=value``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError

LossComponents = Literal["intra_image", "intra_video", "intra_video+cycle", "cycle"]


@dataclass
class WorldConfig:
    """The synthetic world: seeded datasets in the real on-disk formats."""

    root: str = "resources/synthetic"
    seed: int = 0
    classes: int = 12
    videos: int = 1200  # R2V2-format training videos
    val_videos: int = 120
    frame_height: int = 96
    frame_width: int = 128
    images_per_class: int = 40  # ImageNet-format training images per class
    val_images_per_class: int = 10
    ucf101_motions: int = 2  # UCF101-format action classes = classes x motions
    ucf101_groups: int = 4  # groups per action class (one scene and instance each); the first 7/25 are test
    ucf101_clips: int = 2  # clips per group
    ucf101_frames: int = 32  # frames per clip, at 25 fps
    got10k_sequences: list[int] = field(default_factory=lambda: [24, 6, 6])  # GOT-10k-format train, val, test
    got10k_frames: int = 30
    otb_frames: int = 20  # frames of an OTB-format sequence (those with known quirks keep their real lengths)


@dataclass
class DataConfig:
    """Where the datasets live."""

    r2v2_root: str = "resources/r2v2"
    r2v2_split: str = "train"
    imagenet_root: str = "resources/imagenet"
    r2v2_archives: list[str] = field(default_factory=list)  # tar URLs of an R2V2 mirror, each URL#sha256=<hex>
    r2v2_subset: bool = False  # train on R2V2-S (the paper's ResNet-18 ablations) instead of the whole split
    r2v2_subset_videos: int = 109500  # R2V2-S at this scale; the paper's 109.5k videos = 438k frames
    r2v2_format: Literal["jpeg", "shards"] = "jpeg"  # pretraining reads loose JPEGs or tar shards
    r2v2_shards: str = "data/shards/r2v2"  # shards of <split> (or <split>-s<count> for R2V2-S) go here
    shard_videos: int = 2000  # videos per shard
    shard_short_side: int | None = 256  # frames are resized to this short side when sharded; None keeps them
    shard_quality: int = 90  # JPEG quality of resized frames
    shard_streams: int = 8  # sequential readers per process; a multiple of pretrain.workers
    shard_buffer: int = 1000  # videos in each reader's shuffle buffer
    ucf101_root: str = "resources/ucf101"
    ucf101_url: str = "https://www.crcv.ucf.edu/data/UCF101/UCF101.rar"
    ucf101_splits_url: str = "https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip"
    otb_root: str = "resources/otb"
    otb_url: str = "http://cvlab.hanyang.ac.kr/tracker_benchmark/seq/{name}.zip"  # the got10k toolkit's source
    got10k_root: str = "resources/got10k"
    downloads: str = "resources/downloads"  # archives are kept here until their dataset is in place
    download_retries: int = 5
    download_timeout: float = 60.0  # seconds without data before an attempt counts as failed


@dataclass
class ModelConfig:
    """Backbone, projection heads and the momentum encoder's queues."""

    backbone: Literal["resnet18", "resnet50"] = "resnet18"
    head: Literal["linear", "mlp"] = "linear"  # paper: one FC 512x64; authors' code: MLP to 128
    embed_dim: int = 64
    momentum: float = 0.999
    intra_queue: int = 65536
    cycle_queue: int = 81920
    key_bn_splits: int = 1  # single process: key batch normalised in this many shuffled groups


@dataclass
class LossConfig:
    """The paper's objective (Eq. 1-6) and its ablation switches (Tables 2, 5-8)."""

    components: LossComponents = "intra_video+cycle"
    lambda_cycle: float = 0.1
    temperature: float = 0.07
    nn_temperature: float | None = None  # soft nearest neighbour temperature; None = temperature
    neighbors: int = 16384  # m, the size of the neighbour set U
    topk: int | None = None  # Table 7: only the K most similar neighbours form q_hat
    query_view_in_neighbors: bool = False  # Table 5: a view k_++ of the query joins U


@dataclass
class PretrainConfig:
    """The optimisation recipe (MoCo's, with the paper's batch and learning rate)."""

    epochs: int = 200
    batch_size: int = 256  # global, over all processes
    lr: float = 0.06
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    image_size: int = 224
    workers: int = 8  # data loader processes per training process
    seed: int = 0
    checkpoint_every: int = 1000  # steps
    log_every: int = 50  # steps
    max_steps: int | None = None  # stop early (benchmarks, smoke runs); None = all epochs
    amp: bool = True  # bf16 autocast on GPU
    channels_last: bool = True  # on GPU


@dataclass
class MlflowConfig:
    """Experiment tracking; MLFLOW_TRACKING_URI in the environment wins over tracking_uri."""

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "cycle-contrast"


@dataclass
class LinearEvalConfig:
    """Linear probe on frozen features (Tables 3-8): MoCo's main_lincls protocol."""

    dataset: Literal["imagenet", "imagenet100"] = "imagenet"
    protocol: Literal["moco", "fast"] = "moco"  # fast: the same schedule on cached centre-crop features
    epochs: int = 100
    batch_size: int = 256
    lr: float = 30.0  # CMC reports that 10 works better on ImageNet-100
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [60, 80])  # lr x0.1 at these epochs
    image_size: int = 224  # RandomResizedCrop (train) and CenterCrop (val)
    resize: int = 256  # val: Resize(resize) + CenterCrop(image_size)
    seed: int = 0


SIAMFC_STRIDE = 8  # the dilated backbone's output stride in SiamFC
SIAMFC_SEARCH_MARGIN = 16  # training crops the search image to instance_size - 16 (a random shift of up to 4 px)


@dataclass
class TrackEvalConfig:
    """SiamFC on the frozen backbone at output stride 8, trained on GOT-10k, tested on OTB-2015 (Tables
    1-2); the authors' settings (mmaction2-CycleContrast, projects/siamfc-pytorch)."""

    head_channels: int | None = None  # the 1x1 convs' output; None = 512 (R18) / 1024 (R50)
    out_scale: float | None = None  # None = 1e-3 (R18) / 1e-5 (R50)
    exemplar_size: int = 120
    instance_size: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_up: int = 16
    r_pos: float = 16.0  # pixels of the instance crop labelled positive around its centre
    epochs: int = 50
    batch_size: int = 8
    lr: float = 1e-3  # Adam, decayed exponentially to final_lr over the epochs
    final_lr: float = 1e-5
    focal_gamma: float = 2.0
    max_frame_gap: int = 100  # a training pair's frames are fewer than this apart
    min_box_side: float = 20.0  # training frames whose box is smaller or larger (pixels) are skipped
    max_box_side: float = 500.0
    max_frames: int | None = None  # track only the first frames of each test sequence (CPU scales); None = all
    seed: int = 0

    def training_response_size(self) -> int:
        """The side of the response map in training (features are ceil(side / stride))."""
        search, exemplar = (
            math.ceil(side / SIAMFC_STRIDE) for side in (self.instance_size - SIAMFC_SEARCH_MARGIN, self.exemplar_size)
        )
        return search - exemplar + 1


@dataclass
class ActionEvalConfig:
    """UCF101 action recognition on frozen per-frame features (Tables 9-10): AVID-CMA's linear setting."""

    split: int = 1
    clip_frames: int = 8  # 0.5 s at 16 fps
    clip_fps: float = 16.0
    train_clips: int = 10  # random clips per video and epoch
    test_clips: int = 10  # uniformly spaced clips per test video, softmax averaged
    image_size: int = 224
    resize: int = 256  # test: Resize(resize) + CenterCrop(image_size)
    min_area: float = 0.08  # train: RandomResizedCrop scale
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.2])
    dropout: float = 0.5
    warmup_epochs: int = 5  # the classifier alone at the base lr first
    epochs: int = 16
    batch_size: int = 64
    lr: float = 1e-4  # Adam
    lr_decay: float = 0.3
    milestones: list[int] = field(default_factory=lambda: [6, 10, 14])
    seed: int = 0


@dataclass
class RetrievalEvalConfig:
    """UCF101 nearest-neighbour retrieval (Table 11): test videos query train videos by cosine."""

    split: int = 1
    frames_per_video: int = 10  # frame retrieval: at linspace(0, len - 1, n)
    frame_resize: int = 256  # Resize((256, 256)) + CenterCrop(224)
    frame_crop: int = 224
    clips_per_video: int = 10  # clip retrieval: centred at linspace(len/2 of a clip, len - that, n)
    clip_length: int = 16
    clip_resize: list[int] = field(default_factory=lambda: [128, 171])  # Resize((128, 171)) + CenterCrop(112)
    clip_crop: int = 112
    topk: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])


@dataclass
class EvalConfig:
    """Downstream evaluations on frozen features (cycle eval ...)."""

    cache_dir: str = "data/features"  # on-disk feature cache, keyed by weights, data and transform
    batch_size: int = 256  # images per forward pass when extracting features
    workers: int = 8
    linear: LinearEvalConfig = field(default_factory=LinearEvalConfig)
    track: TrackEvalConfig = field(default_factory=TrackEvalConfig)
    action: ActionEvalConfig = field(default_factory=ActionEvalConfig)
    retrieval: RetrievalEvalConfig = field(default_factory=RetrievalEvalConfig)


@dataclass
class GridConfig:
    """The paper's grid values mapped to this scale's sizes (paper value -> value here); values
    missing from a map are used as they are (the paper scale's maps are empty)."""

    neighbors: dict[int, int] = field(default_factory=dict)
    topk: dict[int, int] = field(default_factory=dict)


@dataclass
class WorkflowConfig:
    """What `snakemake` builds at this scale."""

    synthetic: bool = False  # write the synthetic world first: the datasets are its parts
    tables: list[str] = field(default_factory=list)  # the tables `rule all` builds (e.g. [table8]); empty = all


@dataclass
class Config:
    scale: str = "paper"
    results: str = "results"
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    # Checkpoints of the methods the paper compares with (keys: the rows' `baseline` in
    # cycle_pkg/paper_tables.yaml, e.g. supervised_resnet50): evaluated when given.
    baselines: dict[str, str] = field(default_factory=dict)
    world: WorldConfig = field(default_factory=WorldConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_value(value: Any, hint: Any, where: str) -> Any:
    """Return ``value`` converted to ``hint`` or raise a ConfigError naming ``where``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_value(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches no allowed type")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _check_value(k, key_hint, f"{where} key"): _check_value(v, value_hint, f"{where}.{k}")
            for k, v in value.items()
        }
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {where}")


def _check_section(cls: type, data: Any, where: str) -> dict[str, Any]:
    """Validate a (partial) dict against dataclass ``cls``; returns the checked, converted dict."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    checked: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}.{key}: unknown setting (known here: {known})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            checked[key] = _check_section(hint, value, f"{where}.{key}")
        else:
            checked[key] = _check_value(value, hint, f"{where}.{key}")
    return checked


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _build(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {k: _build(hints[k], v) if dataclasses.is_dataclass(hints[k]) else v for k, v in data.items()}
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"loss.lambda_cycle=0.3"`` -> (["loss", "lambda_cycle"], 0.3); values are read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. loss.lambda_cycle=0.3")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def overrides_to_dict(overrides: list[str]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        node = nested
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return nested


def load_config(
    params_path: str | Path | None = "params.yaml",
    scale: str | None = None,
    overrides: list[str] | None = None,
) -> Config:
    """The effective configuration: defaults <- params.yaml <- its scale <- overrides."""
    merged: dict[str, Any] = {}
    scales: dict[str, Any] = {}
    if params_path is not None:
        path = Path(params_path)
        if not path.is_file():
            raise ConfigError(f"{path}: parameter file not found (run from the project root or pass --params)")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        raw = dict(raw)
        scales = raw.pop("scales", {}) or {}
        if not isinstance(scales, dict):
            raise ConfigError(f"{path}: scales: expected a mapping of scale names to settings")
        merged = _check_section(Config, raw, str(path))
    chosen = scale or merged.get("scale") or "paper"
    if scales or params_path is not None:
        if chosen not in scales:
            raise ConfigError(
                f"scale {chosen!r} is not defined under 'scales' in {params_path} "
                f"(defined: {', '.join(scales) or 'none'})"
            )
        merged = _merge(merged, _check_section(Config, scales[chosen] or {}, f"{params_path}: scales.{chosen}"))
    merged["scale"] = chosen
    if overrides:
        merged = _merge(merged, _check_section(Config, overrides_to_dict(overrides), "override"))
    config = _build(Config, merged)
    validate(config)
    return config


def _schema_of(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        properties = {f.name: _schema_of(hints[f.name]) for f in dataclasses.fields(hint)}
        return {"type": "object", "additionalProperties": False, "properties": properties}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of(option) for option in typing.get_args(hint)]}
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin is list:
        return {"type": "array", "items": _schema_of(typing.get_args(hint)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(typing.get_args(hint)[1])}
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return {"type": names[hint]}


def json_schema() -> dict[str, Any]:
    """The JSON schema of a parameter file: the settings at the top level and under each scale.

    Snakemake validates params.yaml against it (workflow/schemas/params.schema.yaml, generated by
    `cycle config --schema`); :func:`load_config` checks the same types with messages that name
    the layer.
    """
    section = _schema_of(Config)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "description": "params.yaml", **section}
    scale = copy.deepcopy(section)  # a copy: written as YAML, shared objects would become anchors
    schema["properties"] = {**section["properties"], "scales": {"type": "object", "additionalProperties": scale}}
    return schema


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config saved with ``to_dict`` (e.g. inside a checkpoint)."""
    config = _build(Config, _check_section(Config, data, "config"))
    validate(config)
    return config


def validate(config: Config) -> None:
    """Cross-field checks that a type check cannot express."""
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
    if model.key_bn_splits < 1:
        raise ConfigError("model.key_bn_splits must be at least 1")
    validate_eval(config.eval)


def validate_eval(cfg: EvalConfig) -> None:
    for name, schedule in (("linear", cfg.linear), ("action", cfg.action)):
        if schedule.milestones != sorted(schedule.milestones) or any(m < 1 for m in schedule.milestones):
            raise ConfigError(f"eval.{name}.milestones: expected increasing epochs >= 1, got {schedule.milestones}")
    if len(cfg.action.color_jitter) != 4:
        raise ConfigError("eval.action.color_jitter: expected [brightness, contrast, saturation, hue]")
    if len(cfg.retrieval.clip_resize) != 2:
        raise ConfigError("eval.retrieval.clip_resize: expected [height, width]")
    if not cfg.retrieval.topk or min(cfg.retrieval.topk) < 1:
        raise ConfigError("eval.retrieval.topk: expected a list of positive integers")
    track = cfg.track
    if track.max_frames is not None and track.max_frames < 2:
        raise ConfigError("eval.track.max_frames: a sequence needs at least 2 frames to track (or null for all)")
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
    positive = ("r2v2_subset_videos", "shard_videos", "shard_streams", "shard_buffer", "download_retries")
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


# How a setting that differs from its scale's appears in a run name, in this order: a prefix for
# the value, or the words for true and false.
NAME_PARTS: dict[str, str | tuple[str, str]] = {
    "data.r2v2_subset": ("r2v2s", "r2v2"),
    "loss.components": "",
    "loss.lambda_cycle": "lambda",
    "loss.neighbors": "m",
    "loss.topk": "top",
    "loss.query_view_in_neighbors": ("kpp", "nokpp"),
    "loss.temperature": "t",
    "loss.nn_temperature": "tnn",
    "model.head": "",
    "model.embed_dim": "d",
    "model.momentum": "mom",
}


def run_name(config: Config, reference: Config) -> str:
    """A readable run name: the backbone, then how the method differs from ``reference`` (the
    scale's own settings), e.g. ``r18``, ``r18-lambda0.3``, ``r18-cycle-m256-kpp``."""
    parts = [config.model.backbone.replace("resnet", "r")]
    for key, words in NAME_PARTS.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value == getattr(getattr(reference, section), name):
            continue
        if isinstance(words, tuple):
            parts.append(words[0] if value else words[1])
        else:
            parts.append(f"{words}{value}".replace("+", "_"))
    return "-".join(parts)
