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
Wall time per study of the AFLoc MONAI Deploy app on CPU (issue 8), reference-size networks with random weights
built locally: ResNet-50 image encoder at 299 + a BERT-base-size text model (12 layers, width 768; the
all-MiniLM-L6-v2 WordPiece vocabulary when installed, else the tests' small one: the vocabulary size does not change
the compute), saved with ``save_afloc_checkpoint`` (eager route) and exported with ``export_deploy_model``
(TorchScript route).

Each study is one DX DICOM (``--rows`` x ``--cols``, 16-bit) with the app config's findings (default 7). For each
model route the app runs in-process on 1 study and on ``--studies`` studies; the marginal time per study is
``(T_N - T_1) / (N - 1)`` (graph set-up and model loading excluded), the whole-run time per study is ``T_N / N``.
With ``--cli`` the command line (``python sample_apps/deploy_afloc``) is also timed once on one study (cold start:
interpreter, torch and Holoscan imports, model load). Run it in the deploy venv (``.ci/deploy.sh`` builds it).

Usage: ``python benchmarks/deploy_walltime.py [--threads 2] [--studies 4] [--no-png] [--cli] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.join(_ROOT, "benchmarks"))

from localize_latency import build_network  # noqa: E402  (the reference-size random network of issue 2)

from monai_afloc.apps.deploy import export_deploy_model, load_app_config, run_app  # noqa: E402
from monai_afloc.checkpoint import save_afloc_checkpoint  # noqa: E402
from tests.helpers import write_dx_dicom  # noqa: E402


def write_study(folder: str, rows: int, cols: int, seed: int) -> str:
    """One DX study: a smooth 'lung field' background, a bright blob, noise; 12-bit values in 16-bit words."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    cy, cx = rng.uniform(0.3, 0.7) * rows, rng.uniform(0.3, 0.7) * cols
    img = 1200 + 600 * np.exp(-(((yy - cy) / (0.08 * rows)) ** 2 + ((xx - cx) / (0.08 * cols)) ** 2))
    img = img + rng.normal(0, 30, (rows, cols))
    return write_dx_dicom(os.path.join(folder, "cxr.dcm"), np.clip(img, 0, 4095).astype(np.uint16))


def timed_run(inp: str, out: str, model: str, config: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    report = run_app(inp, out, model, config=config)
    return time.perf_counter() - t0, report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--studies", type=int, default=4)
    p.add_argument("--rows", type=int, default=2500)
    p.add_argument("--cols", type=int, default=2048)
    p.add_argument("--no-png", action="store_true", help="skip the PNG overlays (DICOM SEG/SR + JSON only)")
    p.add_argument("--cli", action="store_true", help="also time the command line once (cold start)")
    p.add_argument("--small", action="store_true", help="tiny networks (a smoke test of this script)")
    p.add_argument("--json", default=None, help="write the figures here")
    args = p.parse_args(argv)
    if args.studies < 2:
        p.error("--studies must be >= 2 (the marginal time needs two runs)")
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cfg = load_app_config(None)
    config = {"outputs": {"png": not args.no_png}}
    prompts = [prompt for _, prompt in cfg["finding_prompts"]]
    results: dict = {
        "machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "platform": platform.platform(),
                    "torch": torch.__version__, "load_1min_at_start": os.getloadavg()[0]},
        "image": [args.rows, args.cols], "findings": len(prompts), "studies": args.studies,
        "png": not args.no_png, "routes": {},
    }
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        net = build_network(args.small)
        ckpt = save_afloc_checkpoint(net, os.path.join(root, "ckpt"))
        ts = export_deploy_model(net, os.path.join(root, "ts"), prompts, check=False)
        results["build_and_export_s"] = round(time.perf_counter() - t0, 2)
        del net
        one, many = os.path.join(root, "one"), os.path.join(root, "many")
        write_study(os.path.join(one, "s0"), args.rows, args.cols, 0)
        for i in range(args.studies):
            write_study(os.path.join(many, f"s{i}"), args.rows, args.cols, i)
        for route, model in (("torchscript", ts), ("eager", ckpt)):
            t1, rep1 = timed_run(one, os.path.join(root, f"out1_{route}"), model, config)
            tn, repn = timed_run(many, os.path.join(root, f"outn_{route}"), model, config)
            if rep1["status"] != "ok" or repn["status"] != "ok":
                raise RuntimeError(f"{route}: the app did not succeed: {rep1['status']} / {repn['status']}")
            stages: dict[str, list[float]] = {}
            for study in repn["studies"].values():
                for series in study["series"].values():
                    for k, v in series.get("timings_s", {}).items():
                        stages.setdefault(k, []).append(v)
            results["routes"][route] = {
                "stage_means_s": {k: round(float(np.mean(v)), 2) for k, v in stages.items()},
                "one_study_run_s": round(t1, 2),
                f"{args.studies}_studies_run_s": round(tn, 2),
                "per_study_marginal_s": round((tn - t1) / (args.studies - 1), 2),
                "per_study_whole_run_s": round(tn / args.studies, 2),
            }
            print(route, results["routes"][route], flush=True)
        if args.cli:
            env = dict(os.environ, PYTHONPATH=_ROOT, OMP_NUM_THREADS=str(args.threads))
            cfg_path = os.path.join(root, "cfg.json")
            with open(cfg_path, "w") as f:
                json.dump(config, f)
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, os.path.join(_ROOT, "sample_apps", "deploy_afloc"), "-i", one, "-o",
                 os.path.join(root, "out_cli"), "-m", ts, "-c", cfg_path],
                capture_output=True, text=True, env=env,
            )
            results["cli_cold_one_study_torchscript_s"] = round(time.perf_counter() - t0, 2)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
    results["machine"]["load_1min_at_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
