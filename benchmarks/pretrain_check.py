"""Did a `cycle pretrain` run pass on its device? Its summary read back: a finite loss, no frame
skipped, and the run on the device asked for; with the run's throughput, data wait and peak memory.
The exit status says whether it passed. benchmarks/gpu_check.sh's first step, after a test-scale run:

    python -m benchmarks.pretrain_check results/pretrain/r18/summary.json --device cuda \\
        --out benchmarks/results/gpu_check/pretrain_check_test_cuda.json
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from benchmarks.record import arguments, device_name, write_result


def main() -> None:
    began = time.time()
    parser = arguments(__doc__)
    parser.add_argument("summary", help="the run's summary.json")
    parser.add_argument("--device", default="cuda", help="the device it should have run on")
    args = parser.parse_args()

    summary = json.loads(Path(args.summary).read_text())
    loss = summary["final_metrics"]["loss"]
    result = {
        "device": device_name(args.device),
        "steps": summary["steps"],
        "run_device": summary["device"],
        "loss": loss,
        "skipped_frames": summary["skipped_frames"],
        "pairs_per_second": summary["pairs_per_second"],
        "data_wait_fraction": summary["data_wait_fraction"],
        "peak_memory_mb": summary["peak_memory_mb"],
        "passed": math.isfinite(loss) and summary["skipped_frames"] == 0 and summary["device"].startswith(args.device),
    }
    write_result(result, args.out, began)
    if not result["passed"]:
        raise SystemExit(f"pretrain_check: {args.summary} did not pass (see above)")


if __name__ == "__main__":
    main()
