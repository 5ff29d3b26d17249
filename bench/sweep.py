"""Run several `livecomp train` recipes side by side and print their best validation NLL.

    python bench/sweep.py RECIPES.txt --out runs/sweep [--jobs 4] [--threads 1] [--device auto]
                          [--extra "--time-budget 600"]

RECIPES.txt holds one run a line, ``NAME: <livecomp train options>`` (``#`` starts a comment);
``--extra`` options go after every line's own (the last of a repeated option counts). Each
run goes to ``OUT/NAME`` with its own log (``OUT/NAME.log``), one process and ``--threads``
threads each, at most ``--jobs`` at a time. A sweep cut short (Ctrl-C, SIGTERM: its runs are
stopped, and the table printed) can be started again as it was: a run that ended
(``OUT/NAME.done``) is not run again, one that was stopped goes on from its last checkpoint
(``livecomp train --resume``). The table ranks runs by validation NLL alone: the test split is
never read here.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_recipes(path: Path) -> list[tuple[str, list[str]]]:
    """``NAME: options`` lines -> [(name, options)], in file order.

    Raises:
        SystemExit: a line without a name, or a name used twice.
    """
    recipes, seen = [], set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, options = line.partition(":")
        name = name.strip()
        if not sep or not name or "/" in name or name in seen:
            sys.exit(f"{path}:{number}: a line is 'NAME: livecomp train options' with a new name, not {line!r}.")
        seen.add(name)
        recipes.append((name, shlex.split(options)))
    return recipes


def summary(run: Path) -> dict:
    """The best validation NLL of a run folder, its epoch and the epochs run (NaN if none yet)."""
    log = run / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if not records:
        return {"nll": float("nan"), "epoch": -1, "epochs": 0, "trained_s": 0.0}
    best = min(records, key=lambda r: r["valid_nll"])
    return {"nll": best["valid_nll"], "epoch": best["epoch"], "epochs": records[-1]["epoch"],
            "trained_s": records[-1]["trained_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--threads", type=int, default=1, help="torch threads a run")
    parser.add_argument("--device", default="auto", help="passed to every run: auto | cpu | cuda")
    parser.add_argument("--extra", default="", help="options added to every run, after its own")
    args = parser.parse_args()

    recipes = read_recipes(args.recipes)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    waiting = [(n, o) for n, o in recipes if not (args.out / f"{n}.done").exists()]
    running: dict[str, subprocess.Popen] = {}
    failed = []
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    try:
        while waiting or running:
            while waiting and len(running) < args.jobs:
                name, options = waiting.pop(0)
                run = args.out / name
                if (run / "last.pt").exists():          # stopped before: go on where it was
                    options = ["--resume", str(run)]
                else:
                    shutil.rmtree(run, ignore_errors=True)   # stopped inside its first epoch: nothing kept
                    options = [*options, *shlex.split(args.extra), "--out", str(run)]
                command = [sys.executable, "-m", "livecomp.cli", "train", *options, "--device", args.device, "--quiet"]
                with open(args.out / f"{name}.log", "a") as log:
                    log.write(shlex.join(command) + "\n")
                    log.flush()
                    running[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
                print(f"[{time.monotonic() - t0:6.0f} s] started {name}", flush=True)
            time.sleep(1.0)
            for name, process in list(running.items()):
                if process.poll() is not None:
                    del running[name]
                    s = summary(args.out / name)
                    if process.returncode:
                        failed.append(name)
                    else:
                        (args.out / f"{name}.done").touch()
                    print(f"[{time.monotonic() - t0:6.0f} s] {name} ended ({process.returncode}): best valid "
                          f"{s['nll']:.4f} at epoch {s['epoch']} of {s['epochs']}", flush=True)
    except (KeyboardInterrupt, SystemExit):
        for process in running.values():
            process.terminate()
        for process in running.values():
            process.wait()
        failed += [f"{name} (stopped)" for name in running]
        print(f"\nstopped: {', '.join(running) or 'no run was going'}; the same command goes on from where they were")

    print(f"\nvalidation NLL per frame, best first ({args.out})")
    print(f"{'run':32s} {'valid':>8s} {'epoch':>6s} {'epochs':>6s} {'trained s':>9s}")
    rows = sorted(((summary(args.out / n), n) for n, _ in recipes),
                  key=lambda r: (r[0]["nll"] != r[0]["nll"], r[0]["nll"]))
    for s, name in rows:
        print(f"{name:32s} {s['nll']:8.4f} {s['epoch']:6d} {s['epochs']:6d} {s['trained_s']:9.0f}")
    if failed:
        sys.exit(f"{len(failed)} run(s) did not end well: {', '.join(failed)} (their logs are in {args.out}).")


if __name__ == "__main__":
    main()
