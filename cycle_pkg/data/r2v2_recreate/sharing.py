"""The re-created copy under DVC, so that a lab re-creates R2V2 once.

``dvc add`` puts the copy (frames, id lists and the ledger of what is gone) in the project's DVC
cache and writes ``<root>.dvc``; committing that file and ``dvc push`` share it, ``dvc pull`` brings
it to another machine, where a rerun finds every video done or gone and fetches only the failed ones.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def track_with_dvc(root: str | Path) -> Path | None:
    """``dvc add`` the copy at ``root`` when it lies inside a DVC project; returns the .dvc file, or
    None (with the reason logged) when it cannot be done here. The copy itself is complete either
    way, so a failure here is a warning, not an error."""
    root = Path(root).absolute()
    by_hand = f"the copy is complete; to share it, run `dvc add {root}` in its DVC project"
    if os.environ.get("DVC_STAGE"):
        log.warning("running inside the DVC stage %s, which holds DVC's lock: %s", os.environ["DVC_STAGE"], by_hand)
        return None
    project = next((p for p in root.parents if (p / ".dvc").is_dir()), None)
    if project is None:
        log.info("%s is not inside a DVC project, so it is not DVC-tracked", root)
        return None
    if importlib.util.find_spec("dvc") is None:
        log.warning("DVC is not installed (pip install dvc): %s", by_hand)
        return None
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "add", "--quiet", str(root.relative_to(project))],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        log.warning("`dvc add` failed: %s; %s", (done.stderr or done.stdout).strip()[-500:], by_hand)
        return None
    dvc_file = root.with_name(f"{root.name}.dvc")
    log.info(
        "R2V2 copy tracked by DVC: commit %s (git add) and run `dvc push` to share it; `dvc pull` on another machine",
        dvc_file.relative_to(project),
    )
    return dvc_file
