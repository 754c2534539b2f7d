# Copyright (c) monai_afloc contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
Synthetic chest X-ray benchmark (issue "Synthetic chest X-ray benchmark ..."): the demo pipeline with a larger data
set and a longer budget, then a check of the issue's targets on location-free prompts of held-out cases:
pointing game >= 0.60, CNR >= 1.5, mIoU >= 0.25, each >= 0.2 (CNR >= 0.5) above the prompt-only prior, and a mean
detection AUROC >= 0.75. Prints the table, each target with PASS/FAIL, and writes everything under ``--out``.

Usage: ``python benchmarks/synthetic_benchmark.py --minutes 60 --out bench_out [--ablations]`` (not part of CI):
training runs for the minutes given (``--steps N`` instead fixes the iterations, the minutes then only cap them).
``--ladder --steps N [--seeds 0 1 2]`` runs the calibration ladder instead (:mod:`monai_afloc.apps.ladder`: supervised
segmentation, label CAM, AFLoc, prior, shuffled control, with ``--ablations`` also global-only and word+global; the
same backbone, data and steps for every rung; mean ± sd over the seeds).
``--override KEY=VALUE`` (repeatable; VALUE read as JSON, else as a string) changes a bundle setting of the demo
recipe, e.g. on a GPU ``--override backbone=resnet50 --override image_size=224 --override batch_size=64``.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from monai_afloc.apps.demo import run_demo  # noqa: E402
from monai_afloc.apps.ladder import run_ladder  # noqa: E402
from monai_afloc.cli import parse_overrides  # noqa: E402


def check_targets(metrics: dict) -> list[tuple[str, float, float, bool]]:
    """(name, value, target, passed) for each target of the issue."""
    m, p = metrics["afloc"]["mean"], metrics["prior"]["mean"]
    det = metrics["afloc"]["detection"]
    best_auroc = max(det["heatmap_max"]["mean"]["auroc"], det["zero_shot"]["mean"]["auroc"])
    rows = [
        ("pointing game", m["pointing_game"], 0.60),
        ("CNR", m["cnr"], 1.5),
        ("mIoU", m["iou"], 0.25),
        ("pointing game - prior", m["pointing_game"] - p["pointing_game"], 0.2),
        ("CNR - prior", m["cnr"] - p["cnr"], 0.5),
        ("mIoU - prior", m["iou"] - p["iou"], 0.2),
        ("detection AUROC (best of heatmap max / zero-shot)", best_auroc, 0.75),
    ]
    return [(name, float(v), t, bool(v >= t)) for name, v, t in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=None, help="fixed training iterations (default: as many as "
                        "--minutes allow)")
    parser.add_argument("--ladder", action="store_true", help="the calibration ladder at --steps instead")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of --ladder")
    parser.add_argument("--out", default="synthetic_benchmark_out")
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a bundle setting on top of the demo recipe (repeatable; VALUE is JSON or a string)")
    args = parser.parse_args()
    try:
        overrides = parse_overrides(args.override)
    except ValueError as e:
        parser.error(str(e))
    if args.ladder:
        if args.steps is None:
            parser.error("--ladder needs --steps (every rung trains the same number of steps)")
        result = run_ladder(args.out, steps=args.steps, seeds=args.seeds, n_train=args.n_train, n_test=args.n_test,
                            overrides=overrides, ablations=args.ablations)
        print(result["table"])
        return
    # without --steps the minutes are the budget: a step count no run reaches, capped by the minutes
    steps = args.steps if args.steps is not None else 10**9
    metrics = run_demo(args.out, steps=steps, minutes=args.minutes, ablations=args.ablations, n_train=args.n_train,
                       n_test=args.n_test, seed=args.seed, overrides=overrides)
    print(metrics["table"])
    print()
    for name, value, target, ok in check_targets(metrics):
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value:.3f} (target >= {target})")


if __name__ == "__main__":
    main()
