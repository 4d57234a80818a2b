"""The sections of the settings, with the paper's defaults: the synthetic world, the data, the
method (model, loss), its pretraining, MLflow, the evaluations and the workflow; :mod:`.config`
composes them into one configuration. Each evaluation's own section, with its ranges, checks and
protocol in words, lives beside the evaluation (``cycle_pkg/eval/<task>_settings.py``); ``EvalConfig``
gathers them under ``eval``. Free of torch, as the whole ``settings`` package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..eval.action_settings import ActionEvalConfig
from ..eval.finetune_settings import FinetuneEvalConfig
from ..eval.linear_settings import LinearEvalConfig
from ..eval.retrieval_settings import RetrievalEvalConfig
from ..eval.track_settings import TrackEvalConfig

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
    # an instance's surface pattern repeats this many times across the object, drawn uniformly in [low, high]:
    # fewer repeats are coarser, a class's pattern easier to see at a small image size
    pattern_scale: list[float] = field(default_factory=lambda: [2.5, 4.5])


VINCE_LISTS = "https://raw.githubusercontent.com/danielgordon10/vince/HEAD/datasets/info_files"  # R2V2's authors'


@dataclass
class DataConfig:
    """Where the datasets live."""

    r2v2_root: str = "resources/r2v2"
    r2v2_split: str = "train"
    imagenet_root: str = "resources/imagenet"
    r2v2_archives: list[str] = field(default_factory=list)  # tar URLs of an R2V2 mirror, each URL#sha256=<hex>
    # copy: data.r2v2_root is (or becomes, by `--from` or data.r2v2_archives) a copy of R2V2;
    # recreate: re-created there from the published id lists and YouTube
    r2v2_source: Literal["copy", "recreate"] = "copy"
    r2v2_ids_train: str = f"{VINCE_LISTS}/r2v2_ids_train.txt"  # a path or URL; #sha256=<hex> pins it
    r2v2_ids_val: str = f"{VINCE_LISTS}/r2v2_ids_val.txt"
    r2v2_recreate_splits: list[Literal["train", "val"]] = field(default_factory=lambda: ["train", "val"])
    r2v2_video_url: str = "https://www.youtube.com/watch?v={id}"  # {id}: the id list's video id
    r2v2_video_format: str = "bv*[height<=?480][ext=mp4]/b[height<=?480]/wv*/w"  # yt-dlp's selector: one stream
    r2v2_cookies: str | None = None  # a Netscape cookies.txt of a signed-in session, when YouTube asks for one
    r2v2_downloads_in_flight: int = 8  # videos fetched at once (each deleted once its frames are out)
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


PAPER_GPUS = 8  # the paper's pretraining ran on 8 GPUs, each BatchNorm-ing its eighth of the keys


@dataclass
class ModelConfig:
    """Backbone, projection heads and the momentum encoder's queues."""

    backbone: Literal["resnet18", "resnet50"] = "resnet18"
    head: Literal["linear", "mlp"] = "linear"  # paper: one FC 512x64; authors' code: MLP to 128
    embed_dim: int = 64
    momentum: float = 0.999
    intra_queue: int = 65536
    cycle_queue: int = 81920
    # Keys are BatchNorm-ed in shuffled groups of this many samples, in one process or over several;
    # None = the share of each GPU of the paper's 8 (32 of a batch of 256).
    key_bn_group: int | None = None
    # BatchNorm's running averages (used by the frozen evaluations, never by a training step) follow each
    # batch's statistics with this weight: PyTorch's 0.1, as the authors'; more in runs of a few steps
    bn_momentum: float = 0.1

    def key_bn_group_size(self, batch_size: int) -> int:
        """Samples per key BatchNorm group in a (global) batch of ``batch_size``."""
        return self.key_bn_group if self.key_bn_group is not None else batch_size // PAPER_GPUS


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
    kpp_embedding: Literal["view", "query"] = "view"  # k_++ is that view (paper) or the query itself (authors' code)


@dataclass
class MonitorConfig:
    """The representation monitor inside pretraining (cycle_pkg/pretrain/monitor.py): a weighted kNN classifier
    (k nearest, votes exp(cos / T), the instance-discrimination literature's) on the query backbone's
    pooled features of a fixed labelled set, the first images of each class of data.imagenet_root."""

    dataset: Literal["imagenet", "imagenet100"] = "imagenet100"  # every class, or ImageNet-100's
    bank_per_class: int = 20  # labelled images from train/ that vote
    queries_per_class: int = 10  # images from val/ that are classified
    image_size: int | None = None  # centre crop (after a resize to 256/224 of it); None = pretrain.image_size
    k: int = 200
    temperature: float = 0.07
    # The cycle's mechanism (cycle_pkg/pretrain/mechanism.py) is replayed at each look on the frames of the first
    # `videos` videos of data.r2v2_root's val split (with the synthetic world's latent classes); 0: on the labelled
    # set, each image its own video (the paper's scale: no classes are known for R2V2's videos)
    videos: int = 0
    # At the end of a run, its kNN curve and a t-SNE of the labelled set's features as MLflow artifacts
    # (a few CPU seconds: scikit-learn's import and the embedding; the small scales leave them out).
    pictures: bool = True


@dataclass
class PretrainConfig:
    """The optimisation recipe (MoCo's, with the paper's batch and learning rate)."""

    epochs: int = 200
    batch_size: int = 256  # global, over all processes
    lr: float = 0.06
    # the cosine lr: epoch, set at each epoch's start (MoCo's adjust_learning_rate, the authors'); step: every step
    lr_schedule: Literal["epoch", "step"] = "epoch"
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
    # Where MoCo v2 runs: "cpu" in the loader workers, "device" in batches on the training device (the
    # workers only read JPEG bytes); "auto" is "device" on CUDA and "cpu" elsewhere. Both draw the same parameters.
    augment_on: Literal["auto", "cpu", "device"] = "auto"
    monitor_every: int = 1000  # steps between the monitor's looks (also at step 0 and the last); 0 = no monitor
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    # A finished run keeps checkpoint.pt (both encoders, queues, optimizer) to continue training
    # from; false leaves only backbone.pt, what the evaluations read.
    keep_training_state: bool = True
    # Under SLURM: checkpoint and requeue the job this many seconds before its time limit (0: only
    # when SIGUSR1 arrives), so that the limit costs no retry of the workflow.
    requeue_margin: int = 300


@dataclass
class MlflowConfig:
    """Where jobs log their MLflow runs; MLFLOW_TRACKING_URI in the environment wins over tracking_uri."""

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "cycle-contrast"
    # A tracking server that stops answering during a job is retried this long (training goes on, its
    # metrics kept to send later); then the job fails, or goes on without MLflow.
    outage_seconds: float = 600.0
    on_outage: Literal["fail", "continue"] = "fail"


@dataclass
class EvalConfig:
    """Downstream evaluations (cycle eval ...): on frozen features, and Table 9's fine-tuning."""

    cache_dir: str = "data/features"  # on-disk feature cache, keyed by weights, data and transform
    batch_size: int = 256  # images per forward pass when extracting features
    workers: int = 8
    linear: LinearEvalConfig = field(default_factory=LinearEvalConfig)
    track: TrackEvalConfig = field(default_factory=TrackEvalConfig)
    action: ActionEvalConfig = field(default_factory=ActionEvalConfig)
    finetune: FinetuneEvalConfig = field(default_factory=FinetuneEvalConfig)
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
    # The backbones whose rows are trained (e.g. [resnet18]); the other rows keep the paper's numbers only. Empty = all
    backbones: list[Literal["resnet18", "resnet50"]] = field(default_factory=list)
    # Every grid point is trained once per seed (pretrain.seed) and each run evaluated; with several
    # seeds the tables show means with 95% intervals.
    seeds: list[int] = field(default_factory=lambda: [0])
    # A local run forks its jobs from one process that imported torch, torchvision and MLflow once
    # (cycle_pkg/jobs/forkserver.py): ~9 CPU s less per job on a CPU core. Runs through a cluster executor never do.
    fork_server: bool = True
