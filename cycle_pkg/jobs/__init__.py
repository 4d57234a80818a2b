"""Running jobs: MLflow, SLURM and preemption, locks, attempt logs, the fork server and atomic writes."""
