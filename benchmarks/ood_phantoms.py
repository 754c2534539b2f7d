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
Out-of-distribution check: a checkpoint (e.g. the demo's ``demo_out/models/afloc``) scored on phantoms of
:class:`monai_afloc.apps.phantoms.ChestPhantomGenerator`, a generator that shares no code with the training data's,
with the prompts "opacity", "nodule", "pleural effusion", "pneumothorax", "cardiomegaly" (the demo's protocol:
the checkpoint's frame size and σ, location-free prompts, the image-shuffled control).

Prints a Markdown table per prompt and overall. With ``--in-distribution demo_out/metrics.json`` (the demo's
``metrics["afloc"]["mean"]["pointing_game"]``) it also prints the ratio OOD / in-distribution pointing game and
whether the drop stays within 20 % (ratio >= 0.8). Writes the phantoms and ``ood_metrics.json`` under ``--out``.

Usage::

    python benchmarks/ood_phantoms.py --checkpoint demo_out/models/afloc [--n 120] [--out ood_out] \\
        [--in-distribution demo_out/metrics.json] [--seed 0] [--image-size 256]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from monai_afloc.apps.outputs import to_jsonable  # noqa: E402
from monai_afloc.apps.phantoms import evaluate_phantoms, format_phantom_table  # noqa: E402

#: the largest accepted relative drop of the pointing game out of distribution
TOLERANCE = 0.2


def in_distribution_pointing_game(metrics_json: str) -> float:
    """``metrics["afloc"]["mean"]["pointing_game"]`` of the demo's ``metrics.json``."""
    with open(metrics_json, encoding="utf-8") as f:
        metrics = json.load(f)
    try:
        value = metrics["afloc"]["mean"]["pointing_game"]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{metrics_json} has no afloc.mean.pointing_game (is it the demo's metrics.json?)") from e
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{metrics_json}: the in-distribution pointing game must be a number > 0, got {value!r}.")
    return float(value)


def compare(ood: float, ind: float, tolerance: float = TOLERANCE) -> tuple[float, bool]:
    """(ratio OOD / in-distribution, whether the ratio is at least ``1 - tolerance``)."""
    ratio = ood / ind
    return ratio, bool(ratio >= 1.0 - tolerance)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (or release .ckpt)")
    parser.add_argument("--n", type=int, default=120, help="phantom images")
    parser.add_argument("--out", default="ood_out", help="folder for the phantoms and ood_metrics.json")
    parser.add_argument("--in-distribution", dest="in_distribution", default=None, help="the demo's metrics.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", dest="image_size", type=int, default=256)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = evaluate_phantoms(args.checkpoint, os.path.join(args.out, "phantoms"), n=args.n, seed=args.seed,
                                image_size=args.image_size, device=args.device)
    print(f"{results['n_images']} phantoms, {results['n_items']} findings, frame {results['frame_size']} px, "
          f"sigma {results['sigma']:.3f}, checkpoint {results['checkpoint']} ({time.perf_counter() - t0:.0f} s)\n")
    print(format_phantom_table(results))
    if args.in_distribution:
        ind = in_distribution_pointing_game(args.in_distribution)
        ood = results["afloc"]["overall"]["pointing_game"]
        ratio, ok = compare(ood, ind)
        results["in_distribution"] = {"pointing_game": ind, "ratio": ratio, "within_tolerance": ok,
                                      "tolerance": TOLERANCE, "metrics_json": os.path.abspath(args.in_distribution)}
        print(f"\npointing game: OOD {ood:.3f} / in-distribution {ind:.3f} = {ratio:.3f}; "
              f"drop within {TOLERANCE:.0%}: {'PASS' if ok else 'FAIL'}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ood_metrics.json"), "w", encoding="utf-8") as f:
        json.dump(to_jsonable(results), f, indent=1)
    return results


if __name__ == "__main__":
    main()
