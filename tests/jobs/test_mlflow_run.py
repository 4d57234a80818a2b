import hashlib
import threading
import time

import mlflow
import pytest

from cycle_pkg.errors import MlflowUnavailable
from cycle_pkg.jobs.mlflow_job import DataInput, MlflowRun, listing_digest
from cycle_pkg.jobs.mlflow_store import EXPERIMENT_KIND, MODEL_TRAINING
from cycle_pkg.settings.sections import MlflowConfig


def test_a_resumed_job_reopens_its_run_and_a_lost_run_is_replaced(tmp_path, mlflow_uri):
    mlflow_run = MlflowRun(MlflowConfig())
    first = mlflow_run.start("r18", None, {"loss": {"lambda_cycle": 0.1}}, {"grid.backbone": "resnet18"})
    mlflow_run.log_metrics({"loss": 1.0}, step=1)
    mlflow_run.end("KILLED")
    again = mlflow_run.start("r18", first, {"loss": {"lambda_cycle": 0.1}}, {})
    mlflow_run.log_metrics({"loss": 0.5}, step=2)
    mlflow_run.end()
    assert again == first
    run = mlflow.get_run(first)
    assert run.info.status == "FINISHED" and run.data.params == {"loss.lambda_cycle": "0.1"}
    assert [m.value for m in mlflow.MlflowClient().get_metric_history(first, "loss")] == [1.0, 0.5]
    replaced = mlflow_run.start("r18", "ffffffffffffffffffffffffffffffff", {}, {})
    mlflow_run.end()
    assert replaced != first


def test_epochs_are_written_in_batches_and_a_resumed_jobs_replayed_epochs_are_not_logged_twice(
    tmp_path, mlflow_uri, monkeypatch
):
    from cycle_pkg.jobs import mlflow_job as module

    writes, log_batch = [], mlflow.MlflowClient.log_batch  # the store's writes of metrics

    def counted(*args, **kwargs):
        writes.extend([1] if kwargs.get("metrics") else [])
        return log_batch(*args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", counted)
    mlflow_run = MlflowRun(MlflowConfig())
    run_id = mlflow_run.start("probe", None, {}, {})
    for epoch in (1, 2, 3):
        mlflow_run.log_epoch(epoch, {"train_loss": 1.0 / epoch, "lr": 0.1})
    history = mlflow.MlflowClient().get_metric_history
    assert writes == [] and history(run_id, "train_loss") == []  # within EPOCH_FLUSH_SECONDS: held
    mlflow_run.end("KILLED")  # e.g. preempted: what it held is written first
    assert len(writes) == 1 and [m.step for m in history(run_id, "train_loss")] == [1, 2, 3]

    monkeypatch.setattr(module, "EPOCH_FLUSH_SECONDS", 0.0)  # every epoch written at once
    assert mlflow_run.start("probe", run_id, {}, {}) == run_id
    for epoch in (2, 3, 4, 5):  # the resumed job replays epochs 2 and 3
        mlflow_run.log_epoch(epoch, {"train_loss": 1.0 / epoch, "lr": 0.1})
    assert len(writes) == 3 and [m.step for m in history(run_id, "train_loss")] == [1, 2, 3, 4, 5]
    mlflow_run.end()
    assert [m.value for m in history(run_id, "lr")] == [0.1] * 5 and mlflow.get_run(run_id).info.status == "FINISHED"


def test_disabled_mlflow_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    mlflow_run = MlflowRun(MlflowConfig(enabled=False))
    unread = DataInput("r2v2/train", str(tmp_path / "no-such-folder"), "training")  # not even looked at
    assert mlflow_run.start("r18", None, {}, {}) is None
    mlflow_run.log_inputs([unread])
    mlflow_run.log_metrics({"loss": 1.0})
    assert not (tmp_path / "never.db").exists()


def dataset_inputs(run_id):
    """A run's datasets as (name, digest, source, context) and how many it has."""
    inputs = mlflow.get_run(run_id).inputs.dataset_inputs
    contexts = [{t.key: t.value for t in d.tags}["mlflow.data.context"] for d in inputs]
    found = {(d.dataset.name, d.dataset.digest, d.dataset.source, c) for d, c in zip(inputs, contexts, strict=True)}
    return found, len(inputs)


def test_a_run_logs_the_folders_it_reads_as_datasets_once_and_its_experiment_is_model_training(
    tmp_path, mlflow_uri, caplog
):
    data = tmp_path / "r2v2"
    (data / "train" / "ab").mkdir(parents=True)
    (data / "train" / "ab" / "abcdefghijk_000001.jpg").write_bytes(b"jpeg")
    (data / "r2v2_ids_train.txt").write_text("abcdefghijk,1\n")
    digest = listing_digest(data)
    inputs = [DataInput("r2v2/train", str(data), "training"), DataInput("ucf101", str(tmp_path / "none"), "evaluation")]
    mlflow_run = MlflowRun(MlflowConfig())
    run_id = mlflow_run.start("r18", None, {}, {})
    mlflow_run.log_inputs(inputs)
    mlflow_run.end("KILLED")
    assert dataset_inputs(run_id) == ({("r2v2/train", digest, f'{{"uri": "{data}"}}', "training")}, 1)
    assert "MLflow dataset ucf101: " in caplog.text and "not logged" in caplog.text  # a warning, not a failure
    tags = mlflow.get_run(run_id).inputs.dataset_inputs[0].tags
    assert {t.key: t.value for t in tags}["cycle.digest"].startswith("sha256 of the listing")
    experiment = mlflow.MlflowClient().get_experiment(mlflow.get_run(run_id).info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND] == MODEL_TRAINING == "custom_model_development"

    (data / "train" / "ab" / "abcdefghijk_000002.jpg").write_bytes(b"jpeg")  # another digest now
    assert listing_digest(data) != digest
    assert mlflow_run.start("r18", run_id, {}, {}) == run_id  # resumed: what it read is logged already
    mlflow_run.log_inputs(inputs)
    mlflow_run.end()
    assert dataset_inputs(run_id) == ({("r2v2/train", digest, f'{{"uri": "{data}"}}', "training")}, 1)

    unlogged = mlflow_run.start("r18", None, {}, {})  # a first attempt killed before it logged its datasets
    mlflow_run.end("KILLED")
    assert mlflow_run.start("r18", unlogged, {}, {}) == unlogged
    mlflow_run.log_inputs(inputs)
    mlflow_run.end()
    assert dataset_inputs(unlogged)[1] == 1


def test_the_shards_are_digested_by_their_index_and_a_listing_by_names_and_sizes(tmp_path):
    shards = tmp_path / "train"
    shards.mkdir()
    (shards / "train-000000.tar").write_bytes(b"tar")
    (shards / "index.json").write_text('{"shards": [{"sha256": "ab"}]}')
    digest, of_what = DataInput("r2v2/train shards", str(shards), "training", manifest="index.json").digest()
    assert of_what == "sha256 of index.json"
    assert digest == hashlib.sha256(b'{"shards": [{"sha256": "ab"}]}').hexdigest()[:32]
    listed = listing_digest(shards)
    (shards / "train-000000.tar").write_bytes(b"TAR")  # same name, same size: the listing does not see it
    assert listing_digest(shards) == listed
    (shards / "train-000000.tar").write_bytes(b"TARS")
    assert listing_digest(shards) != listed
    (shards / "link").symlink_to(shards)  # a folder linked into itself is walked once
    assert len(listing_digest(shards)) == 32


def test_an_existing_experiment_is_marked_model_training_unless_someone_chose_its_kind(tmp_path, mlflow_uri):
    client = mlflow.MlflowClient(mlflow_uri)
    for name, kind, expected in [
        ("untagged", None, MODEL_TRAINING),
        ("guessed", "no_inferred_type", MODEL_TRAINING),  # the UI's guess, not a person's choice
        ("chosen", "genai_development", "genai_development"),
    ]:
        experiment_id = client.create_experiment(name, tags={EXPERIMENT_KIND: kind} if kind else None)
        assert MlflowRun(MlflowConfig(experiment=name)).experiment_id == experiment_id
        assert client.get_experiment(experiment_id).tags[EXPERIMENT_KIND] == expected
    created = MlflowRun(MlflowConfig(experiment="new")).experiment_id  # one the job creates
    assert client.get_experiment(created).tags[EXPERIMENT_KIND] == MODEL_TRAINING


def test_a_job_that_loses_the_race_to_create_the_experiment_logs_into_it(tmp_path, mlflow_uri, monkeypatch):
    """Two jobs on a store without the experiment: the one whose creation finds it created meanwhile
    gets it back from mlflow.set_experiment, which does not make it the active one (MLflow 3): its
    run must still go to the experiment, not to Default."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    mlflow.MlflowClient(mlflow_uri).create_experiment("cycle-contrast")  # the other job's
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    found = TrackingServiceClient.get_experiment_by_name
    calls = []

    def before_the_other_job_on_the_first_look(self, name):
        calls.append(name)
        return None if len(calls) == 1 else found(self, name)

    monkeypatch.setattr(TrackingServiceClient, "get_experiment_by_name", before_the_other_job_on_the_first_look)
    mlflow_run = MlflowRun(MlflowConfig())
    run_id = mlflow_run.start("r18", None, {}, {})
    mlflow_run.end()
    assert len(calls) == 2  # the race was taken
    experiment = mlflow.MlflowClient(mlflow_uri).get_experiment_by_name("cycle-contrast")
    assert mlflow.get_run(run_id).info.experiment_id == experiment.experiment_id


def test_a_dead_tracking_server_at_the_start_is_a_clear_error_in_seconds(tmp_path, monkeypatch):
    """Nothing listens at MLFLOW_TRACKING_URI: an error naming it once STARTUP_SECONDS have passed, not
    the 30-40 minutes of MLflow's and the job's retries."""
    from cycle_pkg.jobs import mlflow_store

    from ..helpers import PARAMS, run_cycle_here
    from ..helpers.mlflow_server import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(mlflow_store, "STARTUP_SECONDS", 2.0)
    started = time.monotonic()
    args = ["mlflow-init", "--params", str(PARAMS), "--scale", "test", "--output", str(tmp_path / "mlflow.json")]
    ran = run_cycle_here(args, cwd=tmp_path)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert (
        f"configuration error: MLflow tracking server {uri} does not answer (ConnectionError) after 2 s" in ran.stderr
    )
    assert time.monotonic() - started < 15


class AwayServer:
    """The part of the mlflow module a job's run calls, on a server that can stop answering."""

    def __init__(self):
        self.up, self.logged, self.ended, self.active_run = True, [], None, True

    def _answer(self):
        if not self.up:
            raise RuntimeError(
                "API request failed: Max retries exceeded (Caused by NewConnectionError: Connection refused)"
            )

    def log_metrics(self, metrics, step=None):
        self._answer()
        self.logged.append((step, metrics["loss"]))

    def end_run(self, status):
        if self.active_run:  # as MLflow's: the active run is forgotten before the server is called
            self.active_run = False
            self._answer()
            self.ended = status

    def MlflowClient(self):  # noqa: N802 (the mlflow module's class)
        return self

    def set_terminated(self, run_id, status):
        self._answer()
        self.ended = status


def job_run(server, **settings):
    mlflow_run = MlflowRun(MlflowConfig(tracking_uri="http://tracking:5000", **settings), active=False)
    mlflow_run.active, mlflow_run.mlflow, mlflow_run.run_id = True, server, "run"
    return mlflow_run


def test_a_server_away_during_training_has_its_metrics_kept_and_sent_when_it_answers(caplog):
    server = AwayServer()
    mlflow_run = job_run(server, outage_seconds=60)
    mlflow_run.log_metrics({"loss": 3.0}, step=1)
    server.up = False
    started = time.monotonic()
    mlflow_run.log_metrics({"loss": 2.0}, step=2)  # training goes on: nothing raised, nothing waited for
    mlflow_run.log_metrics({"loss": 1.5}, step=3)
    assert time.monotonic() - started < 1 and server.logged == [(1, 3.0)]
    assert "does not answer" in caplog.text and "waited for 60 s (mlflow.outage_seconds)" in caplog.text
    server.up = True
    mlflow_run.log_metrics({"loss": 1.0}, step=4)
    assert server.logged == [(1, 3.0), (2, 2.0), (3, 1.5), (4, 1.0)]  # in order, once each
    mlflow_run.end()
    assert server.ended == "FINISHED"


def test_a_run_ended_while_the_server_is_away_ends_once_it_answers():
    server = AwayServer()
    mlflow_run = job_run(server, outage_seconds=60)
    server.up = False
    threading.Timer(0.5, lambda: setattr(server, "up", True)).start()
    mlflow_run.end()  # waits for the server: a retried fluent end_run would end nothing
    assert server.ended == "FINISHED" and mlflow_run.run_id is None


def test_a_server_away_longer_than_mlflow_outage_seconds_fails_the_job_or_is_left_as_set():
    server = AwayServer()
    server.up = False
    failing = job_run(server, outage_seconds=0.2)
    failing.log_metrics({"loss": 2.0}, step=1)
    time.sleep(0.3)
    with pytest.raises(MlflowUnavailable, match=r"MLflow server http://tracking:5000 has not answered for 0 s"):
        failing.log_metrics({"loss": 1.0}, step=2)

    going_on = job_run(server, outage_seconds=0.2, on_outage="continue")
    going_on.log_metrics({"loss": 2.0}, step=1)
    time.sleep(0.3)
    going_on.log_metrics({"loss": 1.0}, step=2)  # given up: the job trains on without MLflow
    going_on.end()
    assert not going_on.active and server.logged == [] and server.ended is None


def test_a_listing_of_parts_sees_only_those_parts(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "a.jpg").write_bytes(b"jpeg")
        (tmp_path / f"r2v2_ids_{split}.txt").write_text("a,1\n")
    parts = ("train", "r2v2_ids_train.txt")
    data = DataInput("r2v2/train", str(tmp_path), "training", parts=parts)
    digest, of_what = data.digest()
    assert of_what == "sha256 of the listing of train, r2v2_ids_train.txt (relative path and size of every file)"
    assert digest == listing_digest(tmp_path, parts) != listing_digest(tmp_path)
    (tmp_path / "val" / "b.jpg").write_bytes(b"jpeg")  # the other split: not read, not seen
    (tmp_path / "r2v2_ids_val.txt").write_text("a,1\nb,1\n")
    assert data.digest()[0] == digest
    (tmp_path / "r2v2_ids_train.txt").write_text("a,1\nb,1\n")  # its id list: seen
    assert data.digest()[0] != digest
    with pytest.raises(FileNotFoundError, match="no r2v2_ids_test.txt here"):
        listing_digest(tmp_path, ("train", "r2v2_ids_test.txt"))
