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
