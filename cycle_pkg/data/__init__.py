"""Datasets in their real on-disk formats, augmentations, and the synthetic world."""
