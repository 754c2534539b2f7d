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
Command line: ``monai-afloc localize|classify ...`` (also ``python -m monai_afloc ...``).

Bad input (missing file, corrupt image, 3D volume, empty prompt) gives one line on stderr and a non-zero exit;
other images of the same call are still processed and reported. An image argument may be a folder: its image files
(sorted, not recursive). ``--device auto`` (the default) runs on CUDA when present, else on the CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "build_parser", "parse_overrides", "parse_findings", "resolve_device", "check_out_dir"]

logger = logging.getLogger("monai_afloc")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, except where there is none to show (``None``, ``False``, ``[]``) or
    the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, []) or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def resolve_device(device: str) -> str:
    """
    ``--device``: ``"auto"`` -> ``"cuda"`` when CUDA is available, else ``"cpu"``; any other value must be a torch
    device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises:
        ValueError: not a torch device string.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device expects auto or a torch device (cpu, cuda, cuda:1, ...), got {device!r}.") from e
    return device


def parse_findings(values: Sequence[str] | None) -> list[str] | None:
    """
    ``classify --findings`` (repeatable): each value is one finding or a comma-separated list of them
    (``--findings Edema --findings "Pleural Effusion,Cardiomegaly"``); ``None`` keeps the default findings.

    Raises:
        ValueError: a blank finding.
    """
    if values is None:
        return None
    out = []
    for value in values:
        names = [name.strip() for name in str(value).split(",")]
        if not all(names):
            raise ValueError(f"--findings expects finding names (comma-separated allowed), got {value!r}.")
        out.extend(names)
    return out


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+",
                   help="image files (DICOM, PNG/JPG 8/16-bit gray or RGB, 2D NIfTI) or folders of them")
    p.add_argument("--checkpoint", required=True, help="an AFLoc release .ckpt or a monai_afloc checkpoint folder")
    p.add_argument("--text-model", default=None, help="override the checkpoint's text model (local folder or hub id)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA when present, else CPU), cpu, cuda, ...")
    p.add_argument("--image-size", type=int, default=None,
                   help="override the checkpoint's frame size (default: the size it was saved for)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from monai_afloc import __version__

    parser = argparse.ArgumentParser(prog="monai-afloc", description="AFLoc text-prompted localization for MONAI.",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kw: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=_HelpFormatter, **kw)

    loc = add("localize", help="heatmaps, masks and boxes for free-text prompts")
    _add_model_args(loc)
    loc.add_argument("--prompt", action="append", required=True, help="a free-text prompt (repeatable)")
    loc.add_argument("--threshold", type=float, default=None,
                     help="mask/box threshold on the [-1, 1] heatmap (default: the checkpoint's)")
    loc.add_argument("--sigma", type=float, default=None,
                     help="Gaussian smoothing in sentence-grid cells (default: the checkpoint's)")
    loc.add_argument("--no-overlay", action="store_true", help="skip the overlay PNGs")
    loc.add_argument("--max-output-size", type=int, default=2048,
                     help="longest side of the heatmaps, masks and overlays written (larger images get reduced "
                     "outputs; boxes stay in original pixels)")
    loc.add_argument("--full-size", action="store_true", help="write outputs at the image's full size")
    cls = add("classify", help="zero-shot probabilities per finding")
    _add_model_args(cls)
    cls.add_argument("--findings", action="append", default=None,
                     help="a finding name, or several comma-separated (repeatable; default: CheXpert's 14 and more)")
    cls.add_argument("--mode", choices=("prompt", "heatmap"), default="prompt")
    demo = add("demo", help="synthetic data -> pre-train through the bundle -> evaluate -> overlays")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--steps", type=int, default=None,
                      help="training iterations per trained model (default: the demo's DEFAULT_STEPS, chosen so the "
                      "whole demo takes under 10 minutes on 2 CPU cores; the same seed gives the same figures anywhere)")
    demo.add_argument("--minutes", type=float, default=None, help="optional wall-clock cap per trained model")
    demo.add_argument("--ladder", action="store_true",
                      help="the calibration ladder instead: supervised segmentation, label CAM, AFLoc, prior and "
                      "shuffled control (with --ablations also global-only and word+global) at the same steps, for "
                      "--seeds (mean ± sd)")
    demo.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of --ladder")
    demo.add_argument("--ablations", action="store_true", help="also train global-only and word+global ablations")
    demo.add_argument("--n-train", type=int, default=800, help="synthetic pre-training cases")
    demo.add_argument("--n-test", type=int, default=120, help="synthetic annotated test images")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--text-model", default=None, help="text model folder or hub id (default: offline MiniLM)")
    demo.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                      help="a bundle setting on top of the demo recipe, e.g. backbone=resnet50 (repeatable; VALUE is "
                      "read as JSON, else as a string)")
    return parser


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """
    ``KEY=VALUE`` strings -> a dict of bundle overrides; each VALUE is read as JSON (``224``, ``true``, ``null``,
    ``[1, 2]``), else kept as a string: ``["backbone=resnet50", "image_size=224"]`` ->
    ``{"backbone": "resnet50", "image_size": 224}``.

    Raises:
        ValueError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--override expects KEY=VALUE, got {pair!r}.")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def check_out_dir(path: str) -> str | None:
    """
    Make sure ``--out`` is a folder this process can write, before any work: create it if needed, then create and
    remove a probe file in it. Returns ``None`` when it is usable, else a one-line reason.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        return f"--out {path!r} exists and is not a folder."
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        return f"--out {path!r} cannot be written: {e.strerror or e}."
    return None


def _progress(items: Sequence[str], quiet: bool):
    if quiet:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="images", unit="img", file=sys.stderr)


def _build(args: argparse.Namespace):
    """The localizer or classifier of ``args.checkpoint`` (its saved settings; the command line's explicit ones win)."""
    from monai_afloc.inferers import TextPromptLocalizer, ZeroShotClassifier

    common = {"device": args.device_resolved, "text_model_name_or_path": args.text_model, "image_size": args.image_size}
    if args.command == "localize":
        return TextPromptLocalizer.from_checkpoint(
            args.checkpoint, sigma=args.sigma, threshold=args.threshold,
            max_output_size=None if args.full_size else args.max_output_size, **common,
        )
    return ZeroShotClassifier.from_checkpoint(args.checkpoint, findings=args.findings_list, mode=args.mode, **common)


def _demo(args: argparse.Namespace) -> int:
    import time

    from monai_afloc.apps.demo import DEFAULT_STEPS, run_demo
    from monai_afloc.apps.ladder import run_ladder

    steps = DEFAULT_STEPS if args.steps is None else args.steps
    start = time.time()
    try:
        overrides = parse_overrides(args.override)
        if args.ladder:
            result = run_ladder(args.out, steps=steps, seeds=args.seeds, n_train=args.n_train, n_test=args.n_test,
                                overrides=overrides, ablations=args.ablations)
            print(result["table"])
            print(f"\nwritten to {os.path.abspath(args.out)}: ladder.json, ladder.md "
                  f"({(time.time() - start) / 60:.1f} min)")
            return 0
        metrics = run_demo(args.out, steps=steps, minutes=args.minutes, ablations=args.ablations,
                           n_train=args.n_train, n_test=args.n_test, seed=args.seed, text_model=args.text_model,
                           overrides=overrides)
    except (FileNotFoundError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(metrics["table"])
    print(f"\nwritten to {os.path.abspath(args.out)}: metrics.json, results.md, overlays/, models/afloc "
          f"({metrics['minutes_total']:.1f} min, {steps} training steps per model)")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _demo(args)
    from monai_afloc.apps.runner import expand_image_paths, run_provenance

    try:  # every argument checked before the model loads: a bad one costs nothing
        args.device_resolved = resolve_device(args.device)
        args.findings_list = parse_findings(getattr(args, "findings", None))
        images = expand_image_paths(args.images)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    problem = check_out_dir(args.out)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        inferer = _build(args)
    except Exception as e:  # a checkpoint of the wrong kind, missing, unsafe, or a bad setting: nothing to do
        print(f"error: checkpoint {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    failures = 0
    provenance = run_provenance(inferer, args.checkpoint, command=args.command,
                                text_model=args.text_model, argv=getattr(args, "argv", None))
    if args.command == "localize":
        from monai_afloc.apps.runner import PromptLocalizationRunner

        try:
            inferer.prompt_encoder(args.prompt)  # validates the prompts once, before any image
        except (TypeError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

        def report(path: str, message: str) -> None:  # one line per bad image, the others go on
            print(f"error: {path}: {message}", file=sys.stderr)

        summary = PromptLocalizationRunner(
            inferer, images, args.prompt, args.out, save_overlays=not args.no_overlay, on_error=report,
            progress=lambda paths: _progress(paths, args.quiet), provenance=provenance,
        ).run()
        failures = len(summary["failures"])
    else:
        from monai_afloc.apps.outputs import save_result_json

        rows, failed = {}, {}
        # each result is appended (and flushed) to classification.jsonl as it comes, so a crash keeps those done
        with open(os.path.join(args.out, "classification.jsonl"), "w", encoding="utf-8") as stream:
            for path in _progress(images, args.quiet):
                try:
                    res = inferer(path)
                    rows[path] = dict(zip(res["findings"], res["scores"][0].tolist()))
                except Exception as e:
                    failed[path] = f"{type(e).__name__}: {e}"
                    print(f"error: {path}: {failed[path]}", file=sys.stderr)
                    continue
                stream.write(json.dumps({"image": path, "mode": args.mode, "scores": rows[path]}) + "\n")
                stream.flush()
        provenance["findings"] = list(inferer.findings)
        save_result_json(os.path.join(args.out, "classification.json"),
                         {"mode": args.mode, "results": rows, "failures": failed, "provenance": provenance})
        failures = len(failed)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``monai-afloc``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
