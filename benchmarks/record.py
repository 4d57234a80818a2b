"""How a benchmark writes its result: one JSON file that also says what ran, where and when.

Every benchmark takes its result's file as ``--out`` (:func:`arguments`) and ends with
:func:`write_result`: the figures, after the facts of the run (the command line, the wall time, the
machine, torch's version, the git commit and the date), written atomically (a reader never sees half
a result) and printed. Results are named ``<benchmark>_<what>_<device>.json``: the module's name, what
was measured (the scale, then a variant: a backbone, a budget, a set), ``cpu`` or ``cuda``; a figure
lies beside its result with the same name, ending ``.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the repository: params.yaml, the git checkout


def arguments(doc: str | None, *, required: bool = False) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as the help, and ``--out``, its result's file."""
    prog = f"python -m benchmarks.{Path(sys.argv[0]).stem}"  # run as a module: sys.argv[0] is its file
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out", required=required, metavar="JSON", help="write the result here (<benchmark>_<what>_<device>.json)"
    )
    return parser


def device_name(device: Any) -> str:
    """What a figure was measured on: the GPU's name, or the CPU with torch's threads."""
    import torch

    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}"


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine(), "gpu": gpu}


def facts(started: float | None, command: str | None = None) -> dict[str, Any]:
    """The run's facts: ``command`` (default: this process's command line), the seconds since
    ``started`` (seconds since the epoch; None: not known), the machine, torch, the commit, the date."""
    import torch

    from cycle_pkg.jobs.mlflow_job import git_commit

    return {
        "command": command or shlex.join(["python", *sys.orig_argv[1:]]),
        "wall_seconds": None if started is None else round(time.time() - started, 1),
        "machine": machine(),
        "torch": torch.__version__,
        # COMMIT: what gpu_check.sh was given, for a copy of the working tree without its .git
        "commit": os.environ.get("COMMIT") or git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def save_result(
    result: dict[str, Any], out: str | Path | None, started: float | None, *, command: str | None = None
) -> dict[str, Any]:
    """``result`` after the run's :func:`facts`, written to ``out`` (if given) as strict JSON (a number
    that is not finite as null); returns what was written."""
    from cycle_pkg.jobs.atomic import finite, write_text_atomic

    record = finite({**facts(started, command), **result})
    if out:
        write_text_atomic(out, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return record


def write_result(
    result: dict[str, Any],
    out: str | Path | None,
    started: float | None,
    *,
    command: str | None = None,
    unprinted: Iterable[str] = (),
) -> dict[str, Any]:
    """:func:`save_result`, then print the record (less its ``unprinted`` keys: long lists)."""
    record = save_result(result, out, started, command=command)
    left_out = set(unprinted)
    print(json.dumps({key: value for key, value in record.items() if key not in left_out}, indent=2))
    return record
