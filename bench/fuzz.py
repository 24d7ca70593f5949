"""The fuzz suite at 10x its CI size (or any size), with the outcome counts.

    python bench/fuzz.py [--cases N] [--seed S] [--seconds T] [--kinds K,K] [--start K=N,...] [--json FILE]

Runs the seeded cases of tests/fuzz_harness.py -- malformed models (bytes, fields,
external data, the CLI's ``inspect``) and images (every truncation point, mutated bytes,
lying headers, every mode, the CLI's ``embed --aligned``) -- in watched worker processes,
each case held to a 10 s budget and the worker to its memory bound (see that module).
``--cases`` is the total, shared among the kinds as in CI (default: 10x the CI counts);
the same seed gives the same cases.  ``--seconds`` stops starting cases after T seconds
and prints the ``--start`` that continues where it stopped.  Prints cases, valid results,
TinyfaceErrors by class, onnxruntime's verdicts and every failure; exits 1 on a failure.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fuzz_harness import KINDS, ci_counts, run_cases  # noqa: E402

SCALE = 10


def shares(total, kinds):
    """``total`` cases shared among ``kinds`` in proportion to their CI counts."""
    ci = ci_counts(kinds)
    fixed = {k: n for k, n in ci.items() if k == "image_modes"}       # a fixed list: run once
    rest = {k: n for k, n in ci.items() if k not in fixed}
    left = max(0, total - sum(fixed.values()))
    scale = left / max(1, sum(rest.values()))
    return {**{k: round(n * scale) for k, n in rest.items()}, **fixed}


def show_progress(report, total, began):
    if sys.stderr.isatty():
        done = sum(report.cases.values())
        rate = done / max(time.monotonic() - began, 1e-9)
        sys.stderr.write(f"\r{done}/{total} cases, {len(report.failures)} failures, "
                         f"{rate:.0f}/s, ~{(total - done) / max(rate, 1e-9):.0f} s left ")
        sys.stderr.flush()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, help="total cases (default: 10x the CI counts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, help="stop starting cases after this long")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    p.add_argument("--start", default="", help="KIND=N,...: first case of each kind (to continue a run)")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        p.error(f"unknown kinds {unknown}")
    counts = shares(args.cases, kinds) if args.cases else ci_counts(kinds, scale=SCALE)
    start = {k: int(n) for k, n in (item.split("=") for item in args.start.split(",") if item)}
    total = sum(counts.values())
    print(f"{total} cases, seed {args.seed}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    began = time.monotonic()
    report = run_cases(counts, seed=args.seed, start=start, seconds=args.seconds,
                       progress=lambda r: show_progress(r, total, began))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(report.describe())
    if report.stopped_at:
        print("continue with: --start " + ",".join(f"{k}={at}" for k, (at, _) in report.stopped_at.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=1))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
