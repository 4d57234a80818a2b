"""Contrastive learning of image representations with cross-video cycle-consistency."""

__version__ = "0.1.0"
