"""Jobs for the fork server's tests (tests/jobs/test_forkserver.py): a child runs ``run(argv)``."""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path


def run(argv: list[str]) -> int:
    job, *rest = argv
    if job == "report":  # what the child sees of its process, on stdout; exits with rest[0]
        import numpy
        import threadpoolctl

        print(
            json.dumps(
                {
                    "argv": argv,
                    "cwd": os.getcwd(),
                    "colour": os.environ.get("COLOUR"),
                    "umask": os.umask(0o22),
                    "ppid": os.getppid(),
                    "tmp": tempfile.gettempdir(),
                    "draw": int(numpy.random.randint(1 << 30)),
                    "blas_threads": threadpoolctl.threadpool_info()[0]["num_threads"],
                }
            )
        )
        print("to stderr", file=sys.stderr)
        return int(rest[0])
    if job == "raise":
        raise RuntimeError("a failing job")
    if job == "exit":
        sys.exit(rest[0])
    if job == "wait":  # until a signal; SIGTERM is handled (as a pretraining's checkpoint), others not
        marker = Path(rest[0])

        def terminated(signum: int, _frame: object) -> None:
            marker.write_text(f"signal {signum}")
            sys.exit(7)

        signal.signal(signal.SIGTERM, terminated)
        marker.with_suffix(".started").write_text(str(os.getpid()))
        time.sleep(120)
        return 0
    raise ValueError(f"unknown job {job!r}")
