"""Settings: params.yaml read, typed and checked, and what makes a pretraining run what it is."""
