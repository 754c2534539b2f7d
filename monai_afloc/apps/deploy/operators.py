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
MONAI Deploy App SDK operators of the AFLoc app (``pip install 'monai-afloc[deploy]'``).

Flow (:mod:`monai_afloc.apps.deploy.app`)::

    AFLocDICOMDataLoaderOperator -> AFLocSeriesSelectorOperator -> AFLocSeriesToVolumeOperator
        -> AFLocInferenceOperator -> AFLocResultsWriterOperator (DICOM SEG, Basic Text SR, PNG, JSON, status.json)

The SDK's own operators handle one study (the first selected series of the first study); these subclasses and
operators handle every study and series of the input folder, each in its own ``try``, and record every outcome in a
shared :class:`~monai_afloc.apps.deploy.report.RunReport`: an unreadable file, a study without CR/DX series, a 3D
or multi-frame series, a lateral view, or a failed inference is logged and reported, never fatal to the others.

Geometry: the SDK's ``DICOMSeriesToVolumeOperator`` gives a single-image series as a ``(1, rows, cols)`` array
(SDK 4.0.0, measured) with no affine; the SDK's bundle operator swaps it to ``(cols, rows, 1)``.
:func:`volume_to_2d` accepts either layout and checks it against the DICOM ``Rows``/``Columns``.

Without MONAI Deploy installed this module still imports (its base classes are placeholders that raise on use),
so ``import monai_afloc`` and the package's API test never need Holoscan.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.utils import optional_import

from monai_afloc.apps.deploy.predictor import AFLocPredictor
from monai_afloc.apps.deploy.report import RunReport, SeriesStatus, StudyStatus
from monai_afloc.apps.outputs import save_overlay, save_result_json

Operator, has_deploy = optional_import("monai.deploy.core", name="Operator", as_type="base")
OperatorSpec, _ = optional_import("monai.deploy.core", name="OperatorSpec")
DICOMDataLoaderOperator, _ = optional_import(
    "monai.deploy.operators.dicom_data_loader_operator", name="DICOMDataLoaderOperator", as_type="base"
)
DICOMSeriesSelectorOperator, _ = optional_import(
    "monai.deploy.operators.dicom_series_selector_operator", name="DICOMSeriesSelectorOperator", as_type="base"
)
DICOMSeriesToVolumeOperator, _ = optional_import(
    "monai.deploy.operators.dicom_series_to_volume_operator", name="DICOMSeriesToVolumeOperator", as_type="base"
)
dcmread, has_pydicom = optional_import("pydicom", name="dcmread")

__all__ = [
    "has_deploy",
    "volume_to_2d",
    "findings_text",
    "display_size",
    "AFLocDICOMDataLoaderOperator",
    "AFLocSeriesSelectorOperator",
    "AFLocSeriesToVolumeOperator",
    "AFLocInferenceOperator",
    "AFLocResultsWriterOperator",
]

logger = logging.getLogger("monai_afloc.deploy")


def volume_to_2d(volume: Any, rows: int, cols: int) -> np.ndarray:
    """
    The ``[rows, cols]`` image of a single-image series volume, whatever the SDK's layout.

    Accepted: ``(1, rows, cols)`` (``DICOMSeriesToVolumeOperator`` in SDK 4.0.0: depth, height, width),
    ``(cols, rows, 1)`` (width, height, depth: the layout the SDK's bundle operator gives its transforms; for a
    square image the two trailing-1 layouts cannot be told apart and this one is assumed), ``(rows, cols, 1)`` and
    ``(rows, cols)``.

    Raises:
        ValueError: when the volume is not one 2D image of ``rows`` x ``cols`` pixels in any of these layouts (e.g. a
            3D series), naming the shape.
    """
    arr = np.asarray(volume)
    if arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[1:] == (rows, cols):
        return arr[0]
    if arr.ndim == 3 and arr.shape[2] == 1 and arr.shape[:2] == (cols, rows):
        return arr[..., 0].T
    if arr.ndim == 3 and arr.shape[2] == 1 and arr.shape[:2] == (rows, cols):
        return arr[..., 0]
    if arr.ndim == 2 and arr.shape == (rows, cols):
        return arr
    raise ValueError(
        f"expected one 2D image of {rows} rows x {cols} columns (volume (1, rows, cols) or (cols, rows, 1)), "
        f"got a volume of shape {tuple(arr.shape)}."
    )


def findings_text(result: dict[str, Any], model_name: str, threshold: float) -> str:
    """The narrative of the Basic Text SR: one line per finding with its score and boxes (pixels, x y w h)."""
    lines = [f"{model_name}: text-prompted localization (research use only, not for diagnosis).",
             f"Heatmap threshold {threshold:g}; boxes are x, y, width, height in image pixels (column, row)."]
    for k, label in enumerate(result["labels"]):
        boxes = result["boxes"][k]
        if boxes:
            desc = "; ".join(
                f"box {i + 1} [{', '.join(str(int(v)) for v in b['box'])}] peak {b['score']:.3f} area {int(b['area'])}"
                for i, b in enumerate(boxes)
            )
        else:
            desc = "no region above threshold"
        score = result["scores"][k]
        score_text = "n/a" if score is None else f"{score:.4f}"
        lines.append(f"{label} (prompt '{result['prompts'][k]}'): score {score_text}; {desc}.")
    return "\n".join(lines)


#: type 2 attributes (present, may be empty) that highdicom copies from the source image into the SEG
_TYPE2_SOURCE_ATTRIBUTES = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)


def _fill_type2(series: Any) -> list[str]:
    """Add missing type 2 Patient/Study attributes as empty values to the in-memory source datasets (not the files):
    DICOM allows them empty, highdicom requires them present. Returns the names added."""
    added = set()
    for inst in series.get_sop_instances():
        ds = inst.get_native_sop_instance()
        for name in _TYPE2_SOURCE_ATTRIBUTES:
            if name not in ds:
                setattr(ds, name, "")
                added.add(name)
    return sorted(added)


def display_size(image: np.ndarray, heatmaps: np.ndarray, boxes: list, max_side: int = 1024):
    """
    Subsample the image ``[H, W]``, the heatmaps ``[K, H, W]`` and scale the boxes by one integer stride so the
    longest side is at most ``max_side``: the overlay figure is a few hundred pixels wide, and rendering a
    radiograph at full resolution only costs time (about 0.7 s per finding at 2500 x 2048).
    """
    stride = max(1, int(np.ceil(max(image.shape[-2:]) / max_side)))
    if stride == 1:
        return image, heatmaps, boxes
    scaled = [[dict(b, box=[v / stride for v in b["box"]]) for b in per_finding] for per_finding in boxes]
    return image[::stride, ::stride], heatmaps[:, ::stride, ::stride], scaled


def _safe(uid: Any) -> str:
    s = "".join(c if c.isalnum() or c in ".-_" else "_" for c in str(uid))
    return s or "unknown"


class AFLocDICOMDataLoaderOperator(DICOMDataLoaderOperator):
    """
    The SDK's DICOM loader that never stops on a bad file: every file is read once with pydicom first; files that
    are not DICOM, are corrupt, or lack Study/Series/SOP Instance UIDs or pixel data are rejected and reported,
    the others are grouped into studies by the SDK. Runs once (give it ``CountCondition(app, 1)``).

    Args:
        fragment: the application.
        report: the run report.
        input_folder: the DICOM folder (searched recursively).
    """

    def __init__(self, fragment: Any, *args: Any, report: RunReport, input_folder: Path, **kwargs: Any) -> None:
        if not isinstance(report, RunReport):
            raise TypeError(f"report must be a RunReport, got {type(report).__name__}.")
        self.report = report
        super().__init__(fragment, *args, input_folder=Path(input_folder), must_load=False, **kwargs)

    def _load_data(self, files: list[str]):  # noqa: D401 - SDK hook
        good = []
        for file in sorted(files):
            try:
                ds = dcmread(file)
                missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if k not in ds]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)}")
                if "PixelData" in ds:
                    _ = ds.pixel_array  # decodes: a truncated or corrupt pixel stream fails here, not later
                good.append(file)
            except Exception as err:  # any failure to read one file: reject it, go on
                self.report.reject_file(file, f"{type(err).__name__}: {err}")
        return super()._load_data(good)


class AFLocSeriesSelectorOperator(DICOMSeriesSelectorOperator):
    """
    Select every series whose Modality is one of ``modalities`` (CR, DX) in every study; studies without one are
    reported as ``no_cr_dx_series`` with the modalities they hold.

    Args:
        fragment: the application.
        report: the run report.
        modalities: DICOM modality codes to select.
    """

    def __init__(self, fragment: Any, *args: Any, report: RunReport, modalities: Sequence[str] = ("CR", "DX"),
                 **kwargs: Any) -> None:
        import json

        self.report = report
        self.modalities = [str(m).upper() for m in modalities]
        alternatives = "|".join(self.modalities)
        rules = {"selections": [{"name": "radiograph", "conditions": {"Modality": f"^({alternatives})$"}}]}
        super().__init__(fragment, *args, rules=json.dumps(rules), all_matched=True, **kwargs)

    def filter(self, selection_rules, dicom_study_list, all_matched=False, sort_by_sop_instance_count=False):
        selected = super().filter(selection_rules, dicom_study_list, all_matched, sort_by_sop_instance_count)
        chosen = {s.study.StudyInstanceUID for s in selected}
        for study in dicom_study_list:
            uid = study.StudyInstanceUID
            found = sorted({str(getattr(s, "Modality", "") or "?") for s in study.get_all_series()})
            self.report.study(uid)["modalities"] = found
            if uid not in chosen:
                self.report.study_message(
                    uid, StudyStatus.NO_CR_DX,
                    f"no {'/'.join(self.modalities)} series in this study (found modalities: {', '.join(found)})",
                )
        return selected


class AFLocSeriesToVolumeOperator(DICOMSeriesToVolumeOperator):
    """
    Convert every selected series of every study to an SDK ``Image`` with the SDK's converter, one series at a time;
    keep only single 2D frontal radiographs.

    Emits ``series_images``: a list of dicts ``{"study_uid", "series_uid", "study_selected_series" (a
    StudySelectedSeries holding this series only, for the writers), "image" (the SDK Image), "pixels" [rows, cols],
    "path" (the DICOM file), "view"}``.

    Args:
        fragment: the application.
        report: the run report.
        views: accepted ViewPosition values (upper case; ``""`` accepts a missing ViewPosition).
    """

    def __init__(self, fragment: Any, *args: Any, report: RunReport, views: Sequence[str] = ("PA", "AP", ""),
                 **kwargs: Any) -> None:
        self.report = report
        self.views = [str(v).upper() for v in views]
        self.output_name_series_images = "series_images"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: Any) -> None:
        spec.input(self.input_name_series)
        spec.output(self.output_name_series_images)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        selected = op_input.receive(self.input_name_series) or []
        items = []
        for study_selected in selected:
            for sel in study_selected.selected_series:
                item = self._convert(study_selected.study, sel)
                if item is not None:
                    items.append(item)
        op_output.emit(items, self.output_name_series_images)

    def _convert(self, study: Any, sel: Any) -> dict[str, Any] | None:
        from monai.deploy.core.domain.dicom_series_selection import SelectedSeries, StudySelectedSeries

        series = sel.series
        study_uid, series_uid = study.StudyInstanceUID, series.SeriesInstanceUID
        instances = series.get_sop_instances()
        first = instances[0].get_native_sop_instance() if instances else None
        modality = str(getattr(series, "Modality", "") or "")
        self.report.series(study_uid, series_uid, modality=modality, instances=len(instances))
        try:
            if len(instances) != 1:
                raise ValueError(f"expected one 2D radiograph, got a series of {len(instances)} images (3D series)")
            frames = int(first.get("NumberOfFrames", 1) or 1)
            if frames != 1:
                raise ValueError(f"expected one 2D radiograph, got a multi-frame image of {frames} frames")
            view = str(first.get("ViewPosition", "") or "").strip().upper()
            if view not in self.views:
                self.report.series_failed(
                    study_uid, series_uid, SeriesStatus.SKIPPED,
                    f"view position {view or '(none)'} is not frontal ({', '.join(v or '(none)' for v in self.views)})",
                )
                return None
            one = StudySelectedSeries(study)
            one.add_selected_series(SelectedSeries(sel.selection_name, series, None))
            image = self.convert_to_image([one])
            pixels = volume_to_2d(image.asnumpy(), int(first.Rows), int(first.Columns))
            path = getattr(first, "filename", None)
            if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
                raise ValueError("the instance was not read from a file (no filename); the app reads DICOM files")
        except Exception as err:
            self.report.series_failed(study_uid, series_uid, SeriesStatus.FAILED, f"{type(err).__name__}: {err}")
            return None
        return {"study_uid": study_uid, "series_uid": series_uid, "study_selected_series": one, "image": image,
                "pixels": pixels, "path": os.fspath(path), "view": view, "modality": modality}


class AFLocInferenceOperator(Operator):
    """
    Run :class:`~monai_afloc.apps.deploy.predictor.AFLocPredictor` (TorchScript or eager AFLoc) on every series image.

    Input ``series_images`` (from :class:`AFLocSeriesToVolumeOperator`), output ``results``: the same dicts with
    ``"result"`` (the predictor's output) added. The heatmaps' geometry is checked against the volume's
    ``[rows, cols]``.

    Args:
        fragment: the application.
        predictor: the predictor.
        report: the run report.
    """

    def __init__(self, fragment: Any, *args: Any, predictor: AFLocPredictor, report: RunReport, **kwargs: Any) -> None:
        if not isinstance(predictor, AFLocPredictor):
            raise TypeError(f"predictor must be an AFLocPredictor, got {type(predictor).__name__}.")
        self.predictor = predictor
        self.report = report
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: Any) -> None:
        spec.input("series_images")
        spec.output("results")

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        items = op_input.receive("series_images") or []
        results = []
        for item in items:
            try:
                t0 = time.perf_counter()
                result = self.predictor(item["path"])
                self.report.series(item["study_uid"], item["series_uid"],
                                   timings_s={"inference": round(time.perf_counter() - t0, 3)})
                if tuple(result["heatmaps"].shape[-2:]) != tuple(item["pixels"].shape):
                    raise ValueError(
                        f"heatmaps of shape {tuple(result['heatmaps'].shape[-2:])} do not match the series image "
                        f"{tuple(item['pixels'].shape)} (rows, cols)"
                    )
                results.append({**item, "result": result})
            except Exception as err:
                self.report.series_failed(item["study_uid"], item["series_uid"], SeriesStatus.FAILED,
                                          f"inference: {type(err).__name__}: {err}")
        op_output.emit(results, "results")


class AFLocResultsWriterOperator(Operator):
    """
    Write, per series, into ``OUT/<StudyInstanceUID>/<SeriesInstanceUID>/``: ``seg.dcm`` (DICOM SEG, one binary
    segment per finding, through the SDK's ``DICOMSegmentationWriterOperator``), ``sr.dcm`` (Basic Text SR with
    per-finding scores and boxes, through the SDK's ``DICOMTextSRWriterOperator``), ``overlay_<k>.png`` and
    ``result.json``; then ``OUT/status.json`` (the run report).

    Args:
        fragment: the application.
        output_folder: ``OUT``.
        report: the run report.
        labels: the finding labels (segment labels, in order).
        outputs: which of ``seg``, ``sr``, ``png``, ``json`` to write.
        model_name, model_version: recorded in the DICOM outputs.
        threshold: recorded in the SR and JSON.
    """

    def __init__(
        self,
        fragment: Any,
        *args: Any,
        output_folder: Path,
        report: RunReport,
        labels: Sequence[str],
        outputs: dict[str, bool],
        model_name: str = "AFLoc",
        model_version: str = "0.1.0",
        threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        from monai.deploy.operators.dicom_seg_writer_operator import (
            DICOMSegmentationWriterOperator,
            SegmentDescription,
        )
        from monai.deploy.operators.dicom_text_sr_writer_operator import DICOMTextSRWriterOperator
        from monai.deploy.operators.dicom_utils import ModelInfo
        from pydicom.sr.codedict import codes

        self.output_folder = Path(output_folder)
        self.report = report
        self.labels = list(labels)
        self.outputs = dict(outputs)
        self.model_name = model_name
        self.threshold = float(threshold)
        info = ModelInfo(creator="monai_afloc", name=model_name, version=model_version)
        descriptions = [
            SegmentDescription(
                segment_label=label[:64],
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Finding,
                algorithm_name="AFLoc"[:64],
                algorithm_version=model_version,
            )
            for label in self.labels
        ]
        self.seg_writer = DICOMSegmentationWriterOperator(
            fragment, segment_descriptions=descriptions, output_folder=self.output_folder, model_info=info,
            omit_empty_frames=False, name="afloc_seg_writer_helper",
        )
        self.sr_writer = DICOMTextSRWriterOperator(
            fragment, output_folder=self.output_folder, model_info=info, copy_tags=True,
            name="afloc_sr_writer_helper",
        )
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: Any) -> None:
        spec.input("results")

    @staticmethod
    def _write_via_tmp(folder: Path, name: str, write: Any) -> str:
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            write(Path(tmp))
            written = [f for f in os.listdir(tmp) if f.endswith(".dcm")]
            if len(written) != 1:
                raise RuntimeError(f"expected one DICOM file from the writer, got {written}")
            target = folder / name
            shutil.move(os.path.join(tmp, written[0]), target)
        return str(target)

    def write_one(self, item: dict[str, Any]) -> dict[str, Any]:
        """Write the outputs of one series; returns ``{kind: path}`` (errors of one kind do not stop the others)."""
        result = item["result"]
        folder = self.output_folder / _safe(item["study_uid"]) / _safe(item["series_uid"])
        folder.mkdir(parents=True, exist_ok=True)
        series = item["study_selected_series"].selected_series[0].series
        written: dict[str, Any] = {}
        errors: list[str] = []
        timings = self.report.series(item["study_uid"], item["series_uid"]).setdefault("timings_s", {})
        t0 = time.perf_counter()
        if self.outputs.get("seg", True):
            try:
                masks = np.asarray(result["masks"], dtype=bool)  # [K, rows, cols]
                pixel_array = np.moveaxis(masks, 0, -1)[None].astype(np.uint8)  # [1 frame, rows, cols, K segments]
                added = _fill_type2(series)
                if added:
                    logger.info("series %s: empty type 2 attributes added for the SEG: %s", item["series_uid"], added)
                written["seg"] = self._write_via_tmp(
                    folder, "seg.dcm", lambda d: self.seg_writer.create_dicom_seg(pixel_array, series, d)
                )
            except Exception as err:
                errors.append(f"DICOM SEG: {type(err).__name__}: {err}")
        timings["seg"], t0 = round(time.perf_counter() - t0, 3), time.perf_counter()
        if self.outputs.get("sr", True):
            try:
                text = findings_text(result, self.model_name, self.threshold)
                written["sr"] = self._write_via_tmp(folder, "sr.dcm", lambda d: self.sr_writer.write(text, series, d))
            except Exception as err:
                errors.append(f"DICOM SR: {type(err).__name__}: {err}")
        timings["sr"], t0 = round(time.perf_counter() - t0, 3), time.perf_counter()
        if self.outputs.get("png", True):
            try:
                image, maps, boxes = display_size(result["image"], result["heatmaps"], result["boxes"])
                written["overlays"] = [
                    save_overlay(str(folder / f"overlay_{k:02d}.png"), image, maps[k], title=label, boxes=boxes[k])
                    for k, label in enumerate(result["labels"])
                ]
            except Exception as err:
                errors.append(f"PNG overlays: {type(err).__name__}: {err}")
        timings["png"], t0 = round(time.perf_counter() - t0, 3), time.perf_counter()
        if self.outputs.get("json", True):
            doc = {
                "study_instance_uid": item["study_uid"],
                "series_instance_uid": item["series_uid"],
                "source": item["path"],
                "modality": item["modality"],
                "view_position": item["view"],
                "size": {"rows": int(result["heatmaps"].shape[-2]), "columns": int(result["heatmaps"].shape[-1])},
                "threshold": result["threshold"],
                "findings": [
                    {"label": label, "prompt": result["prompts"][k], "segment_number": k + 1,
                     "score": result["scores"][k], "boxes": result["boxes"][k],
                     "mask_pixels": int(np.count_nonzero(result["masks"][k]))}
                    for k, label in enumerate(result["labels"])
                ],
                "outputs": {k: v for k, v in written.items()},
                "errors": errors,
            }
            written["json"] = save_result_json(str(folder / "result.json"), doc)
        if errors:
            raise RuntimeError("; ".join(errors))
        return written

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        items = op_input.receive("results") or []
        for item in items:
            try:
                outputs = self.write_one(item)
                self.report.series(item["study_uid"], item["series_uid"], status=SeriesStatus.OK, outputs=outputs,
                                   scores=dict(zip(item["result"]["labels"], item["result"]["scores"])))
            except Exception as err:
                self.report.series_failed(item["study_uid"], item["series_uid"], SeriesStatus.FAILED,
                                          f"writing outputs: {err}")
        path = self.report.write(str(self.output_folder))
        logger.info("AFLoc deploy app: report written to %s", path)
