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
The AFLoc MONAI Deploy application: DICOM in, localization and findings out.

Command line (the runnable folder ``sample_apps/deploy_afloc``)::

    python sample_apps/deploy_afloc -i DICOM_DIR -o OUT -m MODEL [-c afloc_app_config.yaml]

In-process::

    from monai_afloc.apps.deploy import run_app
    report = run_app("dicom_in", "out", "model_dir")          # the dict also written to out/status.json

``MODEL`` is an AFLoc release ``.ckpt``, a monai_afloc checkpoint folder (eager) or a TorchScript deploy folder
(:func:`~monai_afloc.apps.deploy.predictor.export_deploy_model`). The config file (findings/prompts, threshold,
modalities, views, outputs) is ``-c``/``--config``, else ``$AFLOC_APP_CONFIG``, else the defaults of
:data:`~monai_afloc.apps.deploy.config.DEFAULT_APP_CONFIG`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch.nn as nn
from monai.utils import optional_import

from monai_afloc.apps.deploy.config import load_app_config
from monai_afloc.apps.deploy.predictor import AFLocPredictor
from monai_afloc.apps.deploy.report import RunReport

Application, has_deploy = optional_import("monai.deploy.core", name="Application", as_type="base")

__all__ = ["CONFIG_ENV", "AFLocDeployApp", "split_config_arg", "run_app", "main"]

logger = logging.getLogger("monai_afloc.deploy")

#: environment variable naming the app config file (used when ``-c`` is not given)
CONFIG_ENV = "AFLOC_APP_CONFIG"


def split_config_arg(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """Remove ``-c PATH``/``--config PATH``/``--config=PATH`` from ``argv`` (the SDK's parser does not know it)."""
    out, config, i = [], None, 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if a in ("-c", "--config"):
            if i + 1 >= len(argv):
                raise ValueError(f"{a} needs a path to the app config YAML.")
            config, i = argv[i + 1], i + 2
            continue
        if a.startswith("--config="):
            config = a.split("=", 1)[1]
        else:
            out.append(a)
        i += 1
    return out, config


class AFLocDeployApp(Application):
    """
    Loader -> CR/DX selector -> per-series volume -> AFLoc -> DICOM SEG + Basic Text SR + PNG + JSON (+ status.json).

    Args:
        argv: as for the SDK's ``Application``: ``["prog", "prog", "-i", IN, "-o", OUT, "-m", MODEL]`` in-process
            (two leading program names are dropped); ``None`` reads ``sys.argv``.
        config: the app config (path, mapping or None: see the module docstring).
        network: an AFLoc-like network object to use instead of loading ``-m`` (in-process use, tests).
        report: a :class:`RunReport` to fill (a new one by default; read it back as ``app.report``).
    """

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        config: str | os.PathLike | Mapping[str, Any] | None = None,
        network: nn.Module | None = None,
        report: RunReport | None = None,
        **kwargs: Any,
    ) -> None:
        if config is None:
            config = os.environ.get(CONFIG_ENV) or None
        self.config = load_app_config(config)
        self.network = network
        self.report = report if report is not None else RunReport()
        self.output_path: Path | None = None
        if argv is None:
            super().__init__(**kwargs)
        else:
            super().__init__(list(argv), **kwargs)

    def compose(self) -> None:
        from monai.deploy.conditions import CountCondition

        from monai_afloc.apps.deploy.operators import (
            AFLocDICOMDataLoaderOperator,
            AFLocInferenceOperator,
            AFLocResultsWriterOperator,
            AFLocSeriesSelectorOperator,
            AFLocSeriesToVolumeOperator,
        )

        context = Application.init_app_context(self.argv)
        input_path, output_path = Path(context.input_path), Path(context.output_path)
        self.output_path = output_path
        if not input_path.is_dir():
            raise ValueError(f"the input must be a folder of DICOM files, got '{input_path}'.")
        cfg = self.config
        model = self.network if self.network is not None else context.model_path
        if model is None or (not isinstance(model, nn.Module) and not str(model).strip()):
            raise ValueError("no model: pass -m MODEL (a checkpoint or a TorchScript deploy folder).")
        try:
            predictor = AFLocPredictor(model, cfg["finding_prompts"], threshold=cfg["threshold"], sigma=cfg["sigma"],
                                       image_size=cfg["image_size"], device=cfg["device"])
        except Exception as err:
            self.report.error(f"model '{model if not isinstance(model, nn.Module) else type(model).__name__}': "
                              f"{type(err).__name__}: {err}")
            raise
        logger.info("AFLoc deploy app: %s model, findings %s", predictor.kind, predictor.labels)
        report = self.report
        loader = AFLocDICOMDataLoaderOperator(self, CountCondition(self, 1), report=report, input_folder=input_path,
                                              name="dicom_loader")
        selector = AFLocSeriesSelectorOperator(self, report=report, modalities=cfg["modalities"],
                                               name="series_selector")
        volume = AFLocSeriesToVolumeOperator(self, report=report, views=cfg["views"], name="series_to_volume")
        infer = AFLocInferenceOperator(self, predictor=predictor, report=report, name="afloc_inference")
        writer = AFLocResultsWriterOperator(
            self, output_folder=output_path, report=report, labels=predictor.labels, outputs=cfg["outputs"],
            model_name=cfg["model_name"], model_version=cfg["model_version"], threshold=predictor.threshold,
            name="afloc_writer",
        )
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, volume, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(volume, infer, {("series_images", "series_images")})
        self.add_flow(infer, writer, {("results", "results")})

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the graph; ``status.json`` is written even when an operator fails outside its per-series guard."""
        try:
            return super().run(*args, **kwargs)
        except Exception as err:
            if not self.report.errors:
                self.report.error(f"{type(err).__name__}: {err}")
            raise
        finally:
            if self.report.written is None and self.output_path is not None:
                self.report.write(str(self.output_path))


def run_app(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    model: str | os.PathLike | nn.Module,
    config: str | os.PathLike | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Run the app in-process on ``input_dir`` and return the run report (also in ``output_dir/status.json``).

    ``model`` is a path (``-m``) or an AFLoc-like network object.

    Raises:
        ImportError: when MONAI Deploy App SDK is not installed (``pip install 'monai-afloc[deploy]'``).
    """
    if not has_deploy:
        raise ImportError("the deploy app needs MONAI Deploy App SDK: pip install 'monai-afloc[deploy]'.")
    os.makedirs(output_dir, exist_ok=True)
    network = model if isinstance(model, nn.Module) else None
    model_path = os.fspath(model) if network is None else os.fspath(output_dir)  # -m must name an existing path
    argv = ["afloc_app", "afloc_app", "-i", os.fspath(input_dir), "-o", os.fspath(output_dir), "-m", model_path]
    app = AFLocDeployApp(argv, config=config, network=network)
    app.run()
    return app.report.finalize()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``python sample_apps/deploy_afloc -i IN -o OUT -m MODEL [-c CONFIG]``)."""
    argv = list(sys.argv if argv is None else argv)
    argv, config = split_config_arg(argv)
    if not has_deploy:
        print("error: the deploy app needs MONAI Deploy App SDK: pip install 'monai-afloc[deploy]'", file=sys.stderr)
        return 2
    # the SDK's Application drops the first program name, its argument parser the second
    try:
        app = AFLocDeployApp([argv[0], *argv] if argv else ["afloc_app", "afloc_app"], config=config)
        app.run()
    except Exception as err:  # bad config, model or input folder: one line, non-zero exit (status.json has it)
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    status = app.report.finalize()["status"]
    print(f"AFLoc deploy app: {status}; report: {app.report.written}")
    return 0 if status == "ok" else 1
