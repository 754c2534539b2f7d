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
The deploy app through the SDK's ``MonaiBundleInferenceOperator`` with the chest bundle's exported model
(:func:`~monai_afloc.apps.deploy.bundle.export_deploy_bundle`)::

    DICOMDataLoaderOperator -> DICOMSeriesSelectorOperator (CR/DX) -> DICOMSeriesToVolumeOperator
        -> SetImageAffineOperator -> MonaiBundleInferenceOperator -> AFLocBundleResultsOperator
        -> AFLocResultsWriterOperator (DICOM SEG, Basic Text SR, PNG, JSON, status.json)

SDK operators are used as they are, so this route has their limits: one series (the first selected one of the
first study) per run, and no per-study error isolation; the main app (:mod:`monai_afloc.apps.deploy.app`) has
neither limit. ``-m`` is the exported bundle folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.utils import optional_import

from monai_afloc.apps.deploy.config import load_app_config
from monai_afloc.apps.deploy.operators import volume_to_2d
from monai_afloc.apps.deploy.report import RunReport, SeriesStatus
from monai_afloc.transforms.image.array import scale_by_max_to_uint8
from monai_afloc.transforms.post.array import heatmap_to_boxes

Application, has_deploy = optional_import("monai.deploy.core", name="Application", as_type="base")
Operator, _ = optional_import("monai.deploy.core", name="Operator", as_type="base")

__all__ = ["single_image_affine", "SetImageAffineOperator", "AFLocBundleResultsOperator", "AFLocBundleDeployApp",
           "run_bundle_app"]

logger = logging.getLogger("monai_afloc.deploy")


def single_image_affine(metadata: Mapping[str, Any]) -> np.ndarray:
    """
    A 4x4 affine for a single-image series in the layout the SDK's bundle operator uses, ``(cols, rows, 1)``:
    axis 0 steps one column (``col_pixel_spacing`` mm), axis 1 one row (``row_pixel_spacing``), axis 2 the depth
    spacing (1 for CR/DX). Projection radiographs have no patient position, so the origin is 0.
    """

    def spacing(key: str) -> float:
        try:
            value = float(metadata.get(key) or 1.0)
        except (TypeError, ValueError):
            value = 1.0
        return value if value > 0 else 1.0

    return np.diag([spacing("col_pixel_spacing"), spacing("row_pixel_spacing"), spacing("depth_pixel_spacing"), 1.0])


class SetImageAffineOperator(Operator):
    """
    Give an SDK ``Image`` of a single-image series (no ``nifti_affine_transform``: the SDK computes it only from two
    or more slices) the affine of :func:`single_image_affine`, so ``MonaiBundleInferenceOperator`` can build its
    ``MetaTensor``. Images that already have an affine pass unchanged.
    """

    def setup(self, spec: Any) -> None:
        spec.input("image")
        spec.output("image")

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        from monai.deploy.core.domain.image import Image

        image = op_input.receive("image")
        meta = dict(image.metadata())
        if meta.get("nifti_affine_transform") is None:
            affine = single_image_affine(meta)
            meta["nifti_affine_transform"] = affine
            meta["affine"] = affine
            image = Image(image.asnumpy(), meta)
        op_output.emit(image, "image")


class AFLocBundleResultsOperator(Operator):
    """
    ``pred`` (``[K, rows, cols]`` heatmaps from the bundle operator) + the selected series -> the ``results`` list
    that :class:`~monai_afloc.apps.deploy.operators.AFLocResultsWriterOperator` writes (masks and boxes at
    ``threshold``; no cosine score on this route).
    """

    def __init__(self, fragment: Any, *args: Any, labels: list[str], prompts: list[str], threshold: float,
                 report: RunReport, **kwargs: Any) -> None:
        self.labels, self.prompts, self.threshold, self.report = list(labels), list(prompts), float(threshold), report
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: Any) -> None:
        spec.input("pred")
        spec.input("study_selected_series_list")
        spec.output("results")

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        from monai.deploy.core.domain.dicom_series_selection import SelectedSeries, StudySelectedSeries

        pred = np.asarray(op_input.receive("pred"), dtype=np.float32)
        selected = op_input.receive("study_selected_series_list")
        study_selected = selected[0]
        sel = study_selected.selected_series[0]
        series, study = sel.series, study_selected.study
        first = series.get_sop_instances()[0].get_native_sop_instance()
        rows, cols = int(first.Rows), int(first.Columns)
        study_uid, series_uid = study.StudyInstanceUID, series.SeriesInstanceUID
        self.report.series(study_uid, series_uid, modality=str(getattr(series, "Modality", "")), instances=1)
        results = []
        try:
            if pred.shape != (len(self.labels), rows, cols):
                raise ValueError(f"bundle output of shape {pred.shape}, expected {(len(self.labels), rows, cols)}")
            pixels = volume_to_2d(sel.image.asnumpy(), rows, cols)
            image = scale_by_max_to_uint8(np.asarray(pixels, dtype=np.float64) - min(float(pixels.min()), 0.0))
            one = StudySelectedSeries(study)
            one.add_selected_series(SelectedSeries(sel.selection_name, series, sel.image))
            result = {
                "labels": self.labels, "prompts": self.prompts, "heatmaps": pred, "masks": pred > self.threshold,
                "boxes": [heatmap_to_boxes(m, self.threshold) for m in pred], "scores": [None] * len(self.labels),
                "image": image.astype(np.float32), "threshold": self.threshold,
            }
            results.append({"study_uid": study_uid, "series_uid": series_uid, "study_selected_series": one,
                            "image": sel.image, "pixels": pixels, "modality": str(getattr(series, "Modality", "")),
                            "view": str(first.get("ViewPosition", "") or ""),
                            "path": str(getattr(first, "filename", "") or ""), "result": result})
        except Exception as err:
            self.report.series_failed(study_uid, series_uid, SeriesStatus.FAILED, f"{type(err).__name__}: {err}")
        op_output.emit(results, "results")


class AFLocBundleDeployApp(Application):
    """
    The bundle route (see the module docstring). ``-m`` is a folder from
    :func:`~monai_afloc.apps.deploy.bundle.export_deploy_bundle`; labels and prompts come from that bundle;
    ``config`` gives the threshold, modalities and outputs.
    """

    def __init__(self, argv: list[str] | None = None, config: Any = None, **kwargs: Any) -> None:
        self.config = load_app_config(config)
        self.report = RunReport()
        self.output_path: Path | None = None
        super().__init__(*([list(argv)] if argv is not None else []), **kwargs)

    def compose(self) -> None:
        import json

        from monai.deploy.conditions import CountCondition
        from monai.deploy.core import Image
        from monai.deploy.core.io_type import IOType
        from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
        from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator
        from monai.deploy.operators.dicom_series_to_volume_operator import DICOMSeriesToVolumeOperator
        from monai.deploy.operators.monai_bundle_inference_operator import IOMapping, MonaiBundleInferenceOperator

        from monai_afloc.apps.deploy.bundle import read_deploy_bundle_labels, read_deploy_bundle_threshold
        from monai_afloc.apps.deploy.operators import AFLocResultsWriterOperator

        context = Application.init_app_context(self.argv)
        input_path, output_path, bundle = Path(context.input_path), Path(context.output_path), Path(context.model_path)
        self.output_path = output_path
        labels, prompts = read_deploy_bundle_labels(bundle)
        # the SDK's model factory wraps the -m folder as a generic Model without a predictor; the bundle operator
        # would call it instead of loading models/model.ts from bundle_path
        context.models = None
        cfg = self.config
        threshold = cfg["threshold"] if cfg["threshold"] is not None else read_deploy_bundle_threshold(bundle)
        rules = {"selections": [{"name": "radiograph",
                                 "conditions": {"Modality": f"^({'|'.join(cfg['modalities'])})$"}}]}
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=input_path, name="dicom_loader")
        selector = DICOMSeriesSelectorOperator(self, rules=json.dumps(rules), name="series_selector")
        volume = DICOMSeriesToVolumeOperator(self, name="series_to_volume")
        affine = SetImageAffineOperator(self, name="set_affine")
        infer = MonaiBundleInferenceOperator(
            self,
            input_mapping=[IOMapping("image", Image, IOType.IN_MEMORY)],
            output_mapping=[IOMapping("pred", np.ndarray, IOType.IN_MEMORY)],
            app_context=context,
            bundle_path=bundle,
            name="bundle_inference",
        )
        results = AFLocBundleResultsOperator(self, labels=labels, prompts=prompts, threshold=threshold,
                                             report=self.report, name="bundle_results")
        writer = AFLocResultsWriterOperator(
            self, output_folder=output_path, report=self.report, labels=labels, outputs=cfg["outputs"],
            model_name=cfg["model_name"], model_version=cfg["model_version"], threshold=threshold,
            name="afloc_writer",
        )
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, volume, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(volume, affine, {("image", "image")})
        self.add_flow(affine, infer, {("image", "image")})
        self.add_flow(infer, results, {("pred", "pred")})
        self.add_flow(selector, results, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(results, writer, {("results", "results")})

    def run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run(*args, **kwargs)
        finally:
            if self.report.written is None and self.output_path is not None:
                self.report.write(str(self.output_path))


def run_bundle_app(input_dir: str | os.PathLike, output_dir: str | os.PathLike, bundle: str | os.PathLike,
                   config: Any = None) -> dict[str, Any]:
    """Run the bundle route in-process; returns the run report (also ``output_dir/status.json``)."""
    if not has_deploy:
        raise ImportError("the deploy app needs MONAI Deploy App SDK: pip install 'monai-afloc[deploy]'.")
    os.makedirs(output_dir, exist_ok=True)
    argv = ["afloc_app", "afloc_app", "-i", os.fspath(input_dir), "-o", os.fspath(output_dir), "-m", os.fspath(bundle)]
    app = AFLocBundleDeployApp(argv, config=config)
    app.run()
    return app.report.finalize()
