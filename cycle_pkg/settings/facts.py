"""What the workflow knows of each setting, in one table (:data:`SETTING_FACTS`): which settings name
a run and how, which are the grid's MLflow tags, which the scale's ``grid`` section maps, and which a
resumed run may change. The grid (:mod:`cycle_pkg.reproduction.grid`) and a run's identity
(:mod:`.identity`) read it; kept apart from the settings' classes, as it speaks of dotted keys only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SettingFacts:
    """What the workflow knows of one setting (a dotted key) or, for ``resumable``, of a whole
    section (a key ending in ``.``, e.g. ``eval.``): the most specific entry that has a say decides."""

    key: str
    # How the setting appears in a run name when it differs from the scale's: a prefix for its
    # value, or the words for true and false. None: it does not name runs.
    name: str | tuple[str, str] | None = None
    tag: str | None = None  # a grid axis: pretraining runs carry the MLflow tag grid.<tag>
    grid_map: str | None = None  # the field of the scale's `grid` section that maps the paper's values
    resumable: bool | None = None  # whether a resumed run may change it (it does not change what the run computes)


# Run names list their parts in this order, after the backbone (which every name starts with).
SETTING_FACTS = (
    SettingFacts("model.backbone", tag="backbone"),
    SettingFacts("data.r2v2_subset", name=("r2v2s", "r2v2"), resumable=False),
    SettingFacts("loss.components", name="", tag="components"),
    SettingFacts("loss.lambda_cycle", name="lambda", tag="lambda"),
    SettingFacts("loss.neighbors", name="m", tag="neighbors", grid_map="neighbors"),
    SettingFacts("loss.topk", name="top", tag="topk", grid_map="topk"),
    SettingFacts("loss.query_view_in_neighbors", name=("kpp", "nokpp"), tag="query_view_in_neighbors"),
    SettingFacts("loss.kpp_embedding", name="kpp_", tag="kpp_embedding"),
    SettingFacts("loss.temperature", name="t"),
    SettingFacts("loss.nn_temperature", name="tnn"),
    SettingFacts("model.head", name=""),
    SettingFacts("model.embed_dim", name="d"),
    SettingFacts("model.momentum", name="mom"),
    SettingFacts("model.key_bn_group", name="bng"),
    SettingFacts("model.bn_momentum", name="bnm"),
    SettingFacts("pretrain.seed", name="seed", tag="seed"),
    # What a resumed run may change: how it runs, where it logs, and everything outside pretraining...
    SettingFacts("pretrain.workers", resumable=True),
    SettingFacts("pretrain.augment_on", resumable=True),
    SettingFacts("pretrain.checkpoint_every", resumable=True),
    SettingFacts("pretrain.log_every", resumable=True),
    SettingFacts("pretrain.max_steps", resumable=True),
    SettingFacts("pretrain.monitor_every", resumable=True),  # the monitor only looks: training is the same
    SettingFacts("pretrain.monitor.", resumable=True),
    SettingFacts("pretrain.keep_training_state", resumable=True),
    SettingFacts("pretrain.requeue_margin", resumable=True),
    SettingFacts("mlflow.", resumable=True),
    SettingFacts("results", resumable=True),
    SettingFacts("scale", resumable=True),
    SettingFacts("world.", resumable=True),
    SettingFacts("data.", resumable=True),
    SettingFacts("workflow.", resumable=True),
    SettingFacts("grid.", resumable=True),
    SettingFacts("baselines.", resumable=True),
    SettingFacts("eval.", resumable=True),
    # ...but not the data settings that decide what data a step sees (and data.r2v2_subset above).
    SettingFacts("data.r2v2_split", resumable=False),
    SettingFacts("data.r2v2_subset_videos", resumable=False),
    SettingFacts("data.r2v2_format", resumable=False),
    SettingFacts("data.shard_streams", resumable=False),
    SettingFacts("data.shard_buffer", resumable=False),
)
