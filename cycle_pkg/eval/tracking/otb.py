"""The OTB-2015 experiment, with the got10k toolkit's own metrics, result files and plots.

``ExperimentOTB`` owns the OTB protocol: per-sequence result files ``<results>/OTB2015/<tracker>/
<seq>.txt`` (one ``x,y,w,h`` line per frame, ``%.3f``) with ``times/<seq>_time.txt``; a report that
sets each first predicted box to the ground truth, computes the success curve (fraction of frames
with IoU > t, t in linspace(0, 1, 21)) and its mean (AUC), the precision curve (fraction with centre
error <= t px, t = 0..50) and its value at 20 px, averages the curves over sequences, and plots
``success_plots.png`` and ``precision_plots.png``. Its constructor, however, builds the toolkit's OTB
reader with ``download=True``; this subclass takes the sequences from our readers instead and keeps
everything else, so the numbers are the toolkit's by construction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from got10k.experiments.otb import ExperimentOTB
from got10k.trackers import Tracker
from tqdm import tqdm

from .sequences import SequenceSet, TrackingSequence, check_sequences

log = logging.getLogger(__name__)


class OTBExperiment(ExperimentOTB):
    def __init__(
        self, sequences: Sequence[TrackingSequence], result_dir: str | Path, report_dir: str | Path, version: int = 2015
    ):
        # Not super().__init__(): it would construct got10k.datasets.OTB(download=True). These are the
        # attributes the toolkit's run / report / plot_curves read.
        self.dataset = SequenceSet(check_sequences(sequences, f"OTB-{version}"))
        self.result_dir = os.path.join(result_dir, f"OTB{version}")
        self.report_dir = os.path.join(report_dir, f"OTB{version}")
        self.nbins_iou = 21
        self.nbins_ce = 51

    def run(self, tracker: Tracker, visualize: bool = False) -> None:
        """Track every sequence from its first ground-truth box and record the toolkit's result files."""
        for name in tqdm(self.dataset.seq_names, desc=f"tracking {tracker.name}", dynamic_ncols=True):
            frames, boxes = self.dataset[name]
            predicted, times = tracker.track(frames, boxes[0], visualize=visualize)
            self._record(os.path.join(self.result_dir, tracker.name, f"{name}.txt"), predicted, times)
            log.info("tracked %s (%d frames, %.1f fps)", name, len(frames), len(times) / max(times.sum(), 1e-9))

    def performance(self, tracker_name: str) -> dict[str, Any]:
        """The toolkit's report (performance.json, plots) for one tracker; its overall scores."""
        return self.report([tracker_name])[tracker_name]

    def plot_files(self, tracker_name: str) -> list[Path]:
        folder = Path(self.report_dir) / tracker_name
        return [folder / "success_plots.png", folder / "precision_plots.png"]
