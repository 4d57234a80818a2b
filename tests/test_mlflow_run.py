import mlflow

from cycle_pkg.config import MlflowConfig
from cycle_pkg.mlflow_run import MlflowRun


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


def test_disabled_mlflow_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    mlflow_run = MlflowRun(MlflowConfig(enabled=False))
    assert mlflow_run.start("r18", None, {}, {}) is None
    mlflow_run.log_metrics({"loss": 1.0})
    assert not (tmp_path / "never.db").exists()


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
