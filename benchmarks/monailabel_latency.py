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
MONAI Label serving latency on CPU (issue "MONAI Label: text-prompted pre-annotation"): server start time and
per-request latency (p50/p95) for 1 prompt and for 14 prompts on a 1024×1024 DICOM, with reference-size networks
(ResNet-50 at 299 + a BERT-base-sized text model, random weights, built by ``benchmarks/localize_latency.py``'s
``build_network`` and saved with ``save_afloc_checkpoint``), served by a real ``python -m monailabel.main
start_server`` with the AFLoc sample app, called over HTTP with ``requests`` (the default multipart answer: label
PNG + JSON).

Rows: "1 prompt" (free-text task, the same prompt each time: its vector is cached after the first request),
"1 new prompt" (a different prompt each request: the text encoder runs), "14 prompts" (the findings task, all 14
findings). The first two requests of each row are warm-ups and not counted.

Run it in the MONAI Label venv (``.ci/monailabel.sh`` builds it):
``python benchmarks/monailabel_latency.py [--threads 2] [--requests 20] [--small]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] (numpy's default method)."""
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))


def timed_requests(url: str, model: str, image: str, params_list: list[dict], label: str, warmup: int = 2) -> dict:
    import json

    import requests

    wall, server, infer, write = [], [], [], []
    for i, params in enumerate(params_list):
        t0 = time.perf_counter()
        r = requests.post(f"{url}/infer/{model}", params={"image": image}, data={"params": json.dumps(params)},
                          timeout=600)
        dt = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"{label}: HTTP {r.status_code}: {r.text[:300]}")
        if i < warmup:
            continue
        wall.append(dt)
        body = r.content
        start = body.find(b'"latencies"')
        if start >= 0:
            lat = json.loads(body[start + 13 : body.find(b"}", start) + 1])
            server.append(lat["total"])
            infer.append(lat["infer"])
            write.append(lat["write"])
    return {
        "row": label,
        "n": len(wall),
        "p50": percentile(wall, 50),
        "p95": percentile(wall, 95),
        "server_p50": percentile(server, 50) if server else float("nan"),
        "infer_p50": percentile(infer, 50) if infer else float("nan"),
        "write_p50": percentile(write, 50) if write else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="OMP/torch threads of the server")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per row (after one warm-up)")
    parser.add_argument("--small", action="store_true", help="tiny networks (smoke test)")
    args = parser.parse_args()

    import torch

    from localize_latency import build_network, write_dicom
    from monai_afloc.apps.monailabel.app import DEFAULT_FINDINGS
    from monai_afloc.checkpoint import save_afloc_checkpoint
    from tests.apps.monailabel._server import ServerProcess

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        net = build_network(args.small)
        ckpt = save_afloc_checkpoint(net, os.path.join(tmp, "ckpt"))
        del net
        studies = os.path.join(tmp, "studies")
        os.makedirs(studies)
        write_dicom(os.path.join(studies, "cxr1024.dcm"), 1024)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        server = ServerProcess(tmp, studies, {"checkpoint": ckpt, "device": "cpu"}, timeout=600)
        server.start()
        try:
            load_before = os.getloadavg()[0]
            n = args.requests + 2  # two warm-up requests per row
            rows = [
                timed_requests(server.url, "afloc_prompt", "cxr1024", [{"prompt": "pleural effusion"}] * n,
                               "1 prompt (cached)"),
                timed_requests(server.url, "afloc_prompt", "cxr1024",
                               [{"prompt": f"opacity number {i}"} for i in range(n)], "1 new prompt"),
                timed_requests(server.url, "afloc_findings", "cxr1024", [{}] * n,
                               f"{len(DEFAULT_FINDINGS)} prompts (cached)"),
            ]
            load_after = os.getloadavg()[0]
        finally:
            server.stop()
    nets = "tiny" if args.small else "ResNet-50@299 + BERT-base-size text (random weights)"
    print(f"networks: {nets}; image 1024x1024 DICOM; server threads {args.threads}; torch {torch.__version__}")
    print(f"server start (process start -> /info/ 200, checkpoint load included): {server.start_seconds:.1f} s")
    print(f"1-minute load average: {load_before:.1f} before the requests, {load_after:.1f} after "
          f"({os.cpu_count()} CPUs)")
    print("| request | n | p50 (s) | p95 (s) | server total p50 (s) | localizer p50 (s) | label+JSON p50 (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['row']} | {r['n']} | {r['p50']:.3f} | {r['p95']:.3f} | {r['server_p50']:.3f} | "
              f"{r['infer_p50']:.3f} | {r['write_p50']:.3f} |")


if __name__ == "__main__":
    main()
