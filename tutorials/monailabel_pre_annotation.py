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
Tutorial: AFLoc pre-annotation served by a real MONAI Label server, called from Python (``requests`` and MONAI
Label's own client); the equivalent ``curl`` commands are printed.

1. Write a datastore of synthetic chest radiographs (PNG and DICOM) with their ground-truth boxes.
2. Start ``python -m monailabel.main start_server --app sample_apps/monailabel_afloc ...`` on a free port.
3. ``GET /info/``: the models (one per finding list, one free-text) and their default params.
4. ``POST /infer/afloc_prompt``: a free-text prompt -> label PNG + JSON (scores, boxes); the findings task; the
   heatmaps (``output: heatmap``); MONAI Label's Python client.
5. Save a proposal figure (label mask, boxes and heatmap over the image), stop the server by its PID.

Run it in the MONAI Label environment (``.ci/monailabel.sh`` builds one)::

    python tutorials/monailabel_pre_annotation.py --out monailabel_out [--checkpoint demo_out/models/afloc]

Without ``--checkpoint`` the server uses the tests' hand-built *brightness* network (``--conf network_factory
tests.helpers:BrightnessAFLoc``: its heatmap is the smoothed image brightness, for every prompt): a stand-in that
shows the plumbing, not a trained model. ``python -m monai_afloc demo`` trains one (``demo_out/models/afloc``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app_dir: str, studies: str, conf: dict, port: int, log_path: str) -> tuple[subprocess.Popen, float]:
    """Start MONAI Label (``python -m monailabel.main``, not the bash launcher) and wait for ``/info/``."""
    import requests

    cmd = [sys.executable, "-m", "monailabel.main", "start_server", "--app", app_dir, "--studies", studies,
           "--host", "127.0.0.1", "--port", str(port)]
    for k, v in conf.items():
        cmd += ["--conf", k, v]
    print("$", " ".join(cmd))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    while time.perf_counter() - t0 < 300:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped (exit {proc.returncode}); see {log_path}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/info/", timeout=2).ok:
                return proc, time.perf_counter() - t0
        except requests.ConnectionError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"no answer from the server in 300 s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)


def save_proposal_figure(path: str, image: np.ndarray, label: np.ndarray, heatmap: np.ndarray, result: dict,
                         truth: list, title: str) -> str:
    """Two panels: what an annotator gets in MONAI Label (label mask + boxes) and the heatmap behind it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6), dpi=100)
    axes[0].imshow(image, cmap="gray")
    axes[0].imshow(np.ma.masked_equal(label, 0), cmap="autumn", alpha=0.45, vmin=1, vmax=max(2, int(label.max())))
    for entry in result["prompts"]:
        for b in entry["boxes"][:3]:
            x, y, w, h = b["box"]
            axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="yellow", linewidth=1.5))
            axes[0].text(x, y - 3, f"{entry['prompt']} {b['score']:.2f}", color="yellow", fontsize=8)
    for x, y, w, h in truth:
        axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="lime", linestyle="--"))
    axes[0].set_title("proposal: label mask (orange), boxes (yellow), truth (green, dashed)", fontsize=9)
    im = axes[1].imshow(image, cmap="gray")
    im = axes[1].imshow(heatmap, cmap="jet", alpha=0.45, vmin=-1, vmax=1)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    axes[1].set_title("heatmap in [-1, 1] (output: heatmap)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="monailabel_out")
    parser.add_argument("--checkpoint", default=None, help="an AFLoc .ckpt or monai_afloc checkpoint folder")
    parser.add_argument("--text-model", default=None, help="override the checkpoint's text model (local folder)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--figure", default=None, help="where to save the figure (default: OUT/proposal.png)")
    args = parser.parse_args(argv)
    import nibabel as nib
    import requests
    from PIL import Image

    from monai_afloc.apps.evaluation import read_synthetic_annotations
    from monai_afloc.apps.synthetic import SyntheticCXRGenerator, write_annotated_split
    from monai_afloc.transforms.image import LoadGrayscaleImage

    # 1. a datastore: MONAI Label serves the images of a folder (ids = file names without extension)
    out = os.path.abspath(args.out)
    data = write_annotated_split(os.path.join(out, "synthetic"), 2, SyntheticCXRGenerator(seed=3), with_dicom=True)
    items = read_synthetic_annotations(data)
    studies = os.path.join(out, "studies")
    os.makedirs(studies, exist_ok=True)
    shutil.copy(items[0]["image"], os.path.join(studies, "cxr0.png"))
    shutil.copy(os.path.splitext(items[1]["image"])[0] + ".dcm", os.path.join(studies, "cxr1.dcm"))

    # 2. the server, with a copy of the sample app (MONAI Label writes model/, logs/ ... into the app folder)
    app_dir = os.path.join(out, "app")
    shutil.rmtree(app_dir, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "sample_apps", "monailabel_afloc"), app_dir)
    conf = {"findings": "Pleural Effusion,Pneumothorax,Consolidation,Cardiomegaly,Nodule"}
    if args.checkpoint:
        conf["checkpoint"] = args.checkpoint
        if args.text_model:
            conf["text_model"] = args.text_model
    else:
        conf["network_factory"] = "tests.helpers:BrightnessAFLoc"
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    proc, started = start_server(app_dir, studies, conf, port, os.path.join(out, "server.log"))
    print(f"server up in {started:.1f} s at {url}")
    try:
        # 3. what the server offers
        info = requests.get(f"{url}/info/", timeout=30).json()
        for name, model in info["models"].items():
            print(f"model {name}: {model['description'][:80]}... default params {json.dumps(model['config'])[:80]}")

        # 4. a free-text prompt: JSON (scores, boxes) then the label image
        prompt = items[0]["prompt"]
        params = {"prompt": [prompt], "threshold": 0.5}
        print(f"$ curl -X POST '{url}/infer/afloc_prompt?image=cxr0&output=json' -F 'params={json.dumps(params)}'")
        result = requests.post(f"{url}/infer/afloc_prompt", params={"image": "cxr0", "output": "json"},
                               data={"params": json.dumps(params)}, timeout=300).json()
        print(json.dumps(result["prompts"][0], indent=1)[:400])
        print(f"$ curl -X POST '{url}/infer/afloc_prompt?image=cxr0&output=image' -F 'params=...' -o label.png")
        r = requests.post(f"{url}/infer/afloc_prompt", params={"image": "cxr0", "output": "image"},
                          data={"params": json.dumps(params)}, timeout=300)
        label = np.asarray(Image.open(io.BytesIO(r.content)))
        r = requests.post(f"{url}/infer/afloc_prompt", params={"image": "cxr0", "output": "image"},
                          data={"params": json.dumps({**params, "output": "heatmap"})}, timeout=300)
        with open(os.path.join(out, "heatmaps.nii.gz"), "wb") as f:
            f.write(r.content)
        heatmap = np.transpose(nib.load(os.path.join(out, "heatmaps.nii.gz")).get_fdata()[..., 0])  # (x, y) -> rows
        # the findings task on the DICOM, with MONAI Label's own client (what 3D Slicer / OHIF plugins use)
        from monailabel.client import MONAILabelClient

        client = MONAILabelClient(url, tmpdir=out)
        label_file, findings = client.infer("afloc_findings", "cxr1", {"prompt": ["Pleural Effusion", "Nodule"]})
        print("findings on cxr1.dcm:", {p["prompt"]: round(p["score"], 3) for p in findings["prompts"]},
              "label", np.asarray(Image.open(label_file)).shape)
        # a bad request: a 4xx with a message, the server stays up
        bad = requests.post(f"{url}/infer/afloc_prompt", params={"image": "/etc/passwd"},
                            data={"params": '{"prompt": "x"}'}, timeout=30)
        print("bad request ->", bad.status_code, bad.json()["detail"])
    finally:
        stop_server(proc)  # by PID

    # 5. the figure
    image = LoadGrayscaleImage()(os.path.join(studies, "cxr0.png"))[0].numpy()
    net = "brightness stand-in network" if not args.checkpoint else os.path.basename(args.checkpoint.rstrip("/"))
    figure = save_proposal_figure(args.figure or os.path.join(out, "proposal.png"), image, label, heatmap, result,
                                  items[0]["boxes"], f"MONAI Label /infer/afloc_prompt  prompt: '{prompt}'  ({net})")
    print("figure:", figure)
    return {"figure": figure, "result": result, "findings": findings, "start_seconds": started,
            "bad_status": bad.status_code}


if __name__ == "__main__":
    main()
