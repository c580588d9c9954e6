"""`make bench`: run every `bench/bench_*.py`, write bench/results.json and print a table.

Each bench module exposes `run(quick: bool, devices: Sequence[str]) -> list[dict]`; a row has at
least `name`, `value` and `unit`, plus any context (device, batch, precision, ...).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent


def _modules(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if not only or any(o in n for o in only)]


def _devices(choice: str) -> list[str]:
    """The devices to measure: `all` is the CPU plus CUDA where there is a GPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device on this machine")
    if choice != "all":
        return [choice]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _format_table(rows: list[dict]) -> str:
    lines = [f"{'benchmark':<58} {'value':>12}  unit", "-" * 84]
    for row in rows:
        value = row["value"]
        shown = f"{value:12.3f}" if isinstance(value, float) else f"{value!s:>12}"
        lines.append(f"{row['name']:<58} {shown}  {row['unit']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", nargs="*", default=[], help="substrings of bench module names")
    parser.add_argument(
        "--device",
        choices=("all", "cpu", "cuda"),
        default="all",
        help="rows to measure: the CPU's, the GPU's, or both where there is a GPU (default)",
    )
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    devices = _devices(args.device)

    rows: list[dict] = []
    for name in _modules(args.only):
        start = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        module_rows = module.run(quick=args.quick, devices=devices)
        for row in module_rows:
            row.setdefault("module", name)
        rows.extend(module_rows)
        print(
            f"[{name}] {len(module_rows)} rows in {time.perf_counter() - start:.1f} s", flush=True
        )

    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(_format_table(rows))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
