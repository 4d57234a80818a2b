"""Pretraining: the training loop, its saved state, its representation monitor and its summary."""
