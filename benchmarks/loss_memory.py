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
Peak memory and wall time of AFLocLoss forward + backward: a per-text Python loop in the style of the AFLoc/GLoRIA
reference ("loop") against monai_afloc's chunked all-pairs implementation ("chunked").

Each method runs in a fresh subprocess, which creates the inputs, records its peak RSS (``ru_maxrss``) as the
baseline, runs forward + backward once (peak RSS minus baseline = the method's peak memory, input gradients
included), then times ``--reps`` more runs (medians of wall time and of process CPU time; CPU time is the steadier
figure on a shared machine). The parent prints both, their ratios and the relative differences of the losses and
of the gradient norms. The loop materialises, as the reference does, a ``[B, H*W, D]`` transposed copy of the
region features per text, which dominates its memory.

Full size (the AFLoc training setting; a few minutes on 2 CPU threads, the loop needs ~7 GB)::

    python benchmarks/loss_memory.py --threads 2

Smoke test::

    python benchmarks/loss_memory.py --batch 4 --dim 32 --word-grid 8 --sentence-grid 4 --length 16 --reps 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from monai_afloc.losses import AFLocLoss  # noqa: E402
from monai_afloc.utils.enums import AFLocKeys, LossKeys  # noqa: E402

__all__ = ["chunked_afloc_loss", "loop_afloc_loss", "main", "make_inputs", "measure"]

_RESULT_TAG = "LOSS_MEMORY_RESULT "


def make_inputs(args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """Random model outputs (leaf tensors requiring grad) and lengths, seeded by ``args.seed``."""
    g = torch.Generator().manual_seed(args.seed)
    b, d, length = args.batch, args.dim, args.length

    def leaf(*shape):
        return torch.randn(*shape, generator=g).requires_grad_(True)

    word_min = min(args.word_min, length)
    sentence_max = min(args.sentence_max, length)
    return {
        AFLocKeys.IMAGE_WORDS.value: leaf(b, d, args.word_grid, args.word_grid),
        AFLocKeys.IMAGE_SENTENCES.value: leaf(b, d, args.sentence_grid, args.sentence_grid),
        AFLocKeys.IMAGE_REPORT.value: leaf(b, d),
        AFLocKeys.TEXT_WORDS.value: leaf(b, d, length),
        AFLocKeys.WORD_LENGTHS.value: torch.randint(word_min, length + 1, (b,), generator=g),
        AFLocKeys.TEXT_SENTENCES.value: leaf(b, d, length),
        AFLocKeys.SENTENCE_LENGTHS.value: torch.randint(
            min(args.sentence_min, sentence_max), sentence_max + 1, (b,), generator=g
        ),
        AFLocKeys.TEXT_REPORT.value: leaf(b, d),
    }


def _cosine(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-wise cosine of ``[N, D]`` tensors with the reference's clamped norm product."""
    return (x * y).sum(dim=1) / (x.norm(dim=1) * y.norm(dim=1)).clamp(min=eps)


def _loop_local(regions: torch.Tensor, texts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The reference's local loss: one Python iteration per text, every intermediate kept for backward."""
    batch, dim = regions.shape[:2]
    n_reg = regions.shape[2] * regions.shape[3]
    context = regions.reshape(batch, dim, n_reg)
    columns = []
    for j in range(batch):
        n = int(lengths[j])
        words = texts[j : j + 1, :, :n].repeat(batch, 1, 1)  # [B, D, n]: text j against every image
        context_t = context.transpose(1, 2).contiguous()  # [B, R, D]
        att = torch.bmm(context_t, words).view(batch * n_reg, n).softmax(dim=-1)  # softmax over words
        att = att.view(batch, n_reg, n).transpose(1, 2).contiguous().view(batch * n, n_reg)
        att = (att * 4.0).softmax(dim=-1).view(batch, n, n_reg)  # softmax over regions
        weighted = torch.bmm(context, att.transpose(1, 2).contiguous())  # [B, D, n]
        sims = _cosine(words.transpose(1, 2).reshape(batch * n, dim), weighted.transpose(1, 2).reshape(batch * n, dim))
        sims = (sims.view(batch, n) * 5.0).exp().sum(dim=1, keepdim=True).log()
        columns.append(sims)
    logits = 10.0 * torch.cat(columns, dim=1)
    labels = torch.arange(batch)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)


def loop_afloc_loss(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """AFLoc total loss, local terms computed by the reference-style per-text loop."""
    img, txt = inputs[AFLocKeys.IMAGE_REPORT.value], inputs[AFLocKeys.TEXT_REPORT.value]
    logits = 10.0 * (img @ txt.t()) / (img.norm(dim=1)[:, None] * txt.norm(dim=1)[None, :]).clamp(min=1e-8)
    labels = torch.arange(img.shape[0])
    global_loss = F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)
    sentence_loss = _loop_local(
        inputs[AFLocKeys.IMAGE_SENTENCES.value],
        inputs[AFLocKeys.TEXT_SENTENCES.value],
        inputs[AFLocKeys.SENTENCE_LENGTHS.value],
    )
    word_loss = _loop_local(
        inputs[AFLocKeys.IMAGE_WORDS.value], inputs[AFLocKeys.TEXT_WORDS.value], inputs[AFLocKeys.WORD_LENGTHS.value]
    )
    return global_loss + sentence_loss + word_loss


def chunked_afloc_loss(inputs: dict[str, torch.Tensor], chunk_size: int = 8) -> torch.Tensor:
    """AFLoc total loss by :class:`monai_afloc.losses.AFLocLoss`."""
    return AFLocLoss(chunk_size=chunk_size)(**inputs)[LossKeys.LOSS]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure(method: str, args: argparse.Namespace) -> dict:
    """Run ``method`` ("loop" or "chunked") once for peak memory then ``args.reps`` times for time, in-process."""
    torch.set_num_threads(args.threads)
    inputs = make_inputs(args)
    leaves = [v for v in inputs.values() if v.requires_grad]

    def step() -> float:
        for v in leaves:
            v.grad = None
        loss = loop_afloc_loss(inputs) if method == "loop" else chunked_afloc_loss(inputs, args.chunk_size)
        loss.backward()
        return float(loss)

    baseline = _peak_rss_mib()
    start = time.perf_counter()
    loss = step()
    first = time.perf_counter() - start
    peak = _peak_rss_mib() - baseline
    wall, cpu = [], []
    for _ in range(args.reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "method": method,
        "loss": loss,
        "grad_norms": [float(v.grad.norm()) for v in leaves],
        "peak_mib": peak,
        "first_s": first,
        "median_s": statistics.median(wall) if wall else first,
        "median_cpu_s": statistics.median(cpu) if cpu else float("nan"),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--word-grid", type=int, default=38, help="image_words is [B, D, G, G]")
    p.add_argument("--sentence-grid", type=int, default=19, help="image_sentences is [B, D, G, G]")
    p.add_argument("--length", type=int, default=97, help="L of text_words and text_sentences")
    p.add_argument("--word-min", type=int, default=20, help="word_lengths ~ U[word_min, L]")
    p.add_argument("--sentence-min", type=int, default=2)
    p.add_argument("--sentence-max", type=int, default=10, help="sentence_lengths ~ U[min, max]")
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument("--reps", type=int, default=3, help="timed runs after the first (memory) run")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="loop,chunked", help="comma-separated subset of loop,chunked")
    p.add_argument("--worker", choices=["loop", "chunked"], help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Parse ``argv``; run each method in a fresh subprocess; print and return the results by method."""
    args = _parser().parse_args(argv)
    if args.worker:
        print(_RESULT_TAG + json.dumps(measure(args.worker, args)), flush=True)
        return {}
    argv = list(sys.argv[1:] if argv is None else argv)
    results = {}
    for method in args.methods.split(","):
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), *argv, "--worker", method],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_TAG)]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"worker '{method}' failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        results[method] = json.loads(lines[-1][len(_RESULT_TAG) :])
    print(
        f"AFLocLoss forward+backward, B={args.batch} D={args.dim} words {args.word_grid}x{args.word_grid} "
        f"sentences {args.sentence_grid}x{args.sentence_grid} L={args.length} chunk_size={args.chunk_size} "
        f"threads={args.threads} reps={args.reps}"
    )
    for r in results.values():
        print(
            f"  {r['method']:8s} loss={r['loss']:.8f} peak={r['peak_mib']:9.1f} MiB  "
            f"first={r['first_s']:7.2f} s  median wall={r['median_s']:7.2f} s  median CPU={r['median_cpu_s']:7.2f} s"
        )
    if "loop" in results and "chunked" in results:
        loop, ours = results["loop"], results["chunked"]
        rel_loss = abs(ours["loss"] - loop["loss"]) / max(abs(loop["loss"]), 1e-30)
        rel_grad = max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(ours["grad_norms"], loop["grad_norms"]))
        print(
            f"  chunked/loop: memory {ours['peak_mib'] / max(loop['peak_mib'], 1e-9):.3f}, "
            f"wall time {ours['median_s'] / max(loop['median_s'], 1e-9):.3f}, "
            f"CPU time {ours['median_cpu_s'] / max(loop['median_cpu_s'], 1e-9):.3f}; "
            f"relative difference: loss {rel_loss:.2e}, "
            f"gradient norms (max over inputs) {rel_grad:.2e}"
        )
    return results


if __name__ == "__main__":
    main()
