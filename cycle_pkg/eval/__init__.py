"""Downstream evaluations on frozen features: linear probes, SiamFC tracking on OTB, UCF101 action
recognition and retrieval, listed once in :mod:`.registry`. Each one reads a backbone
(:mod:`.checkpoints`), keeps it frozen (:mod:`.features`) and returns its metrics; :mod:`.runner`
turns that into a metrics file and an MLflow run."""
