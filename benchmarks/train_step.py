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
Training-step speed of AFLoc, float32 (``amp=false``, the reference) against the default (``amp="auto"``), in one run.

Two recipes, each in a fresh subprocess per precision (so peak memory is that run's own):
  (a) ``demo``: the demo recipe (ResNet-10 at 128 px, frozen all-MiniLM-L6-v2 with the token-feature cache, centred
      features, projection 256, B = 32, synthetic reports);
  (b) ``reference``: ResNet-50 at 299 px + a BERT-base-size text model with random weights (12 layers, width 768;
      MiniLM's WordPiece vocabulary), trained end to end, B = 16, padded to 97 tokens.
Each subprocess builds the network with a fixed seed, times ``--steps`` full optimizer steps (forward, loss,
backward, AdamW) after one warm-up step on the same batch and reports seconds per step, its peak RSS, the first
step's loss and gradients; the parent prints the ratios and the loss / gradient differences against float32.
``--bundle-epoch`` also times one epoch of the bundle's own ``train.json`` (the demo recipe on the demo's 800
synthetic cases) with ``amp`` false and auto.

Usage: ``python benchmarks/train_step.py [--steps 3] [--recipes demo reference] [--bundle-epoch]`` (not part of CI;
run it with nothing else running).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _build(recipe: str):
    import torch
    from transformers import BertConfig, BertModel

    from monai_afloc.apps.synthetic import SyntheticCXRGenerator
    from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder, minilm_model_path

    torch.manual_seed(0)
    gen = SyntheticCXRGenerator(image_size=(256, 256), seed=0)
    if recipe == "demo":
        text = AFLocTextEncoder(freeze=True, projection_dim=256, center=True, feature_cache_size=50000,
                                local_files_only=True)
        image = AFLocImageEncoder("resnet10", embed_dim=text.embed_dim, input_size=None)
        batch, size, trim = 32, 128, True
    elif recipe == "reference":
        base = AFLocTextEncoder(local_files_only=True, pretrained=False)
        cfg = BertConfig(vocab_size=len(base.tokenizer), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072)
        text = AFLocTextEncoder(model=BertModel(cfg), tokenizer=base.tokenizer)
        image = AFLocImageEncoder("resnet50", embed_dim=text.embed_dim, input_size=299)
        batch, size, trim = 16, 224, False
    else:
        raise ValueError(f"recipe must be 'demo' or 'reference', got {recipe!r}.")
    net = AFLoc(image, text)
    cases = [gen.generate_case(i) for i in range(batch)]
    img = torch.stack([torch.as_tensor(c["image"], dtype=torch.float32) for c in cases])[:, None] / 127.5 - 1.0
    img = torch.nn.functional.interpolate(img, size=(size, size), mode="area").repeat(1, 3, 1, 1)
    from monai_afloc.transforms.text import ReportToSentences

    reports = [". ".join(ReportToSentences()(c["report"])) for c in cases]
    tokens = text.tokenize(reports, max_length=97)
    if trim:
        keep = int(tokens["attention_mask"].sum(1).max())
        tokens = {k: v[:, :keep] for k, v in tokens.items()}
        tokens["report_length"] = 97
    return net, img, tokens


def _worker(recipe: str, amp: bool, steps: int, grads_path: str) -> dict:
    import torch

    from monai_afloc.engines import resolve_amp
    from monai_afloc.losses import AFLocLoss

    net, img, tokens = _build(recipe)
    enabled, kwargs = resolve_amp("auto" if amp else False, "cpu")
    loss_fn = AFLocLoss()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    net.train()

    def step(record: bool):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", enabled=enabled, **kwargs):
            out = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
                   for k, v in net(img, **tokens).items()}
            losses = loss_fn(**out)
        losses["loss"].backward()
        if record:
            grads = {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}
            torch.save(grads, grads_path)
        opt.step()
        return float(losses["loss"])

    state = {k: v.clone() for k, v in net.state_dict().items()}
    first_loss = step(record=True)  # warm-up on the initial weights: the loss and gradients compared
    net.load_state_dict(state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step(record=False)
        times.append(time.perf_counter() - t)
    return {
        "recipe": recipe,
        "amp": enabled,
        "amp_kwargs": {k: str(v) for k, v in kwargs.items()},
        "seconds_per_step": sorted(times)[len(times) // 2],
        "all_times": times,
        "loss": first_loss,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def _bundle_epoch(amp, out_dir: str, data_dir: str) -> float:
    from monai_afloc.apps.demo import DEMO_SETTINGS, find_bundle, train_with_bundle

    settings = dict(DEMO_SETTINGS, dataset_dir=data_dir, generate_synthetic=False, amp=amp, max_steps=None,
                    epochs=1, val_interval=1000, progress_bar=False)
    t = time.perf_counter()
    train_with_bundle(find_bundle(), out_dir, settings)
    return time.perf_counter() - t


def _run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--recipes", nargs="+", default=["demo", "reference"], choices=["demo", "reference"])
    parser.add_argument("--bundle-epoch", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("RECIPE", "AMP", "GRADS"), help=argparse.SUPPRESS)
    parser.add_argument("--child-epoch", nargs=3, metavar=("AMP", "OUT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        recipe, amp, grads = args.child
        print(json.dumps(_worker(recipe, amp == "1", args.steps, grads)))
        return
    if args.child_epoch:
        amp, out, data = args.child_epoch
        print(json.dumps({"seconds": _bundle_epoch(False if amp == "0" else "auto", out, data)}))
        return

    import torch

    from monai_afloc.engines import cpu_has_native_bf16

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            res = {}
            for amp in ("0", "1"):
                res[amp] = _run_child(["--steps", str(args.steps), "--child", recipe, amp, os.path.join(tmp, amp)])
            g32, gamp = torch.load(os.path.join(tmp, "0")), torch.load(os.path.join(tmp, "1"))
            num = sum(float((g32[k] - gamp[k]).float().square().sum()) for k in g32)
            den = sum(float(g32[k].float().square().sum()) for k in g32)
            worst = max(float((g32[k] - gamp[k]).norm() / g32[k].norm().clamp_min(1e-30)) for k in g32)
            f, a = res["0"], res["1"]
            print(f"\n({recipe}) float32: {f['seconds_per_step']:.3f} s/step, peak RSS {f['peak_rss_gb']:.2f} GB; "
                  f"default (amp={a['amp']} {a['amp_kwargs']}): {a['seconds_per_step']:.3f} s/step, peak RSS "
                  f"{a['peak_rss_gb']:.2f} GB")
            print(f"({recipe}) speed-up {f['seconds_per_step'] / a['seconds_per_step']:.2f}x; loss {f['loss']:.5f} vs "
                  f"{a['loss']:.5f} (relative difference {abs(a['loss'] - f['loss']) / abs(f['loss']):.2e}); "
                  f"gradient relative difference {(num / den) ** 0.5:.2e} overall, {worst:.2e} worst tensor")
        if args.bundle_epoch:
            from monai_afloc.apps.synthetic import make_synthetic_dataset

            data = os.path.join(tmp, "data")
            make_synthetic_dataset(data, n_train=800, n_val=64, n_test_annotated=8, image_size=256, seed=0)
            secs = {amp: _run_child(["--child-epoch", amp, os.path.join(tmp, f"run{amp}"), data])["seconds"]
                    for amp in ("0", "1")}
            print(f"\n(bundle epoch, demo recipe, 800 cases) amp=false {secs['0']:.1f} s, amp=auto {secs['1']:.1f} s: "
                  f"{secs['0'] / secs['1']:.2f}x")


if __name__ == "__main__":
    main()
