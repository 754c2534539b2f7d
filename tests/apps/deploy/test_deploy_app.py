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
The AFLoc MONAI Deploy app end to end on synthetic DX DICOM studies written here: DICOM SEG/SR geometry, labels and
scores read back with pydicom/highdicom; bad studies reported; TorchScript and eager models; the command line.

Skipped when MONAI Deploy App SDK is absent, unless MONAI_AFLOC_REQUIRE_DEPLOY=1 (then the tests fail instead).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from tests.helpers import BrightnessAFLoc, make_tiny_bert, write_dx_dicom, write_sized_checkpoint

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_HAS_DEPLOY = all(importlib.util.find_spec(m) is not None for m in ("monai.deploy", "highdicom", "holoscan"))
_REQUIRED = os.environ.get("MONAI_AFLOC_REQUIRE_DEPLOY", "") == "1"
needs_deploy = unittest.skipIf(not _HAS_DEPLOY and not _REQUIRED, "MONAI Deploy App SDK (extra 'deploy') not installed")

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
FINDINGS = {"findings": ["Nodule", "Pleural effusion"], "prompts": [{"label": "Left mass", "prompt": "left mass"}]}


def _retag(path: str, **tags) -> str:
    import pydicom

    ds = pydicom.dcmread(path)
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.save_as(path)
    return path


def _write_ct_series(folder: str, n: int = 3) -> str:
    """A 3-slice CT series (one study): the app must report it as a study without CR/DX series."""
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    for i in range(n):
        p = write_dx_dicom(os.path.join(folder, f"ct_{i}.dcm"), np.full((32, 32), 100 + i, np.uint16))
        _retag(p, Modality="CT", SOPClassUID="1.2.840.10008.5.1.4.1.1.2", StudyInstanceUID=study,
               SeriesInstanceUID=series, ImagePositionPatient=[0.0, 0.0, float(i)],
               ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], PixelSpacing=[1.0, 1.0], InstanceNumber=i + 1)
    return study


def _write_3d_dx_series(folder: str) -> tuple[str, str]:
    """A DX series of two images: not one radiograph, reported as failed."""
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    for i in range(2):
        p = write_dx_dicom(os.path.join(folder, f"dx3d_{i}.dcm"), np.full((40, 30), 100, np.uint16))
        _retag(p, StudyInstanceUID=study, SeriesInstanceUID=series, ImagePositionPatient=[0.0, 0.0, float(i)],
               ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0], InstanceNumber=i + 1)
    return study, series


def _bright_image(rows: int, cols: int, box: tuple[int, int, int, int], background: int = 400, peak: int = 3500):
    y0, y1, x0, x1 = box
    img = np.full((rows, cols), background, np.uint16)
    img[y0:y1, x0:x1] = peak
    return img


def _series_folder(out: str, study: str, series: str) -> str:
    return os.path.join(out, study, series)


@needs_deploy
class TestDeployAppBrightness(unittest.TestCase):
    """One run over a folder of several studies with the hand-built brightness network."""

    @classmethod
    def setUpClass(cls):
        import pydicom

        from monai_afloc.apps.deploy import run_app

        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        cls.inp, cls.out = os.path.join(root, "in"), os.path.join(root, "out")
        for sub in ("a", "b", "ct", "dx3d", "lat", "junk"):
            os.makedirs(os.path.join(cls.inp, sub))
        # A: MONOCHROME2, 16-bit, 160 rows x 120 cols, bright block rows 100..130, cols 20..50
        cls.box_a = (100, 130, 20, 50)
        cls.path_a = write_dx_dicom(os.path.join(cls.inp, "a", "a.dcm"), _bright_image(160, 120, cls.box_a))
        # B: MONOCHROME1 (stored values inverted), 90 rows x 150 cols, finding (bright on display) at rows 10..35,
        # cols 100..140: stored as the darkest pixels
        cls.box_b = (10, 35, 100, 140)
        disp = _bright_image(90, 150, cls.box_b)
        cls.path_b = write_dx_dicom(os.path.join(cls.inp, "b", "b.dcm"), 4000 - disp, photometric="MONOCHROME1")
        cls.ct_study = _write_ct_series(os.path.join(cls.inp, "ct"))
        cls.dx3d_study, cls.dx3d_series = _write_3d_dx_series(os.path.join(cls.inp, "dx3d"))
        lat = write_dx_dicom(os.path.join(cls.inp, "lat", "lat.dcm"), _bright_image(50, 40, (5, 10, 5, 10)))
        _retag(lat, ViewPosition="LL")
        cls.lat = pydicom.dcmread(lat)
        # corrupt: a real DICOM cut in the middle of its pixel data; and a text file
        whole = open(write_dx_dicom(os.path.join(root, "whole.dcm"), _bright_image(64, 64, (1, 5, 1, 5))), "rb").read()
        cls.truncated = os.path.join(cls.inp, "junk", "truncated.dcm")
        with open(cls.truncated, "wb") as f:
            f.write(whole[: len(whole) - 3000])
        cls.text = os.path.join(cls.inp, "junk", "notes.txt")
        with open(cls.text, "w") as f:
            f.write("not a DICOM file\n")
        cls.ds_a, cls.ds_b = pydicom.dcmread(cls.path_a), pydicom.dcmread(cls.path_b)
        cls.report = run_app(cls.inp, cls.out, BrightnessAFLoc(), config=FINDINGS)
        with open(os.path.join(cls.out, "status.json")) as f:
            cls.status = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _folder(self, ds):
        return _series_folder(self.out, ds.StudyInstanceUID, ds.SeriesInstanceUID)

    def _expected(self, path):
        from monai_afloc.inferers.localizer import TextPromptLocalizer

        prompts = ["nodule", "pleural effusion", "left mass"]
        return TextPromptLocalizer(BrightnessAFLoc(), threshold=0.5)(path, prompts, return_masks=True,
                                                                     return_boxes=True)

    def test_status_report(self):
        st = self.status
        self.assertEqual(st, json.loads(json.dumps(self.report)) | {"elapsed_s": st["elapsed_s"]})
        self.assertEqual(st["status"], "partial")
        studies = st["studies"]
        self.assertEqual(studies[self.ds_a.StudyInstanceUID]["status"], "ok")
        self.assertEqual(studies[self.ds_b.StudyInstanceUID]["status"], "ok")
        ct = studies[self.ct_study]
        self.assertEqual(ct["status"], "no_cr_dx_series")
        self.assertIn("found modalities: CT", ct["messages"][0])
        dx3d = studies[self.dx3d_study]
        self.assertEqual(dx3d["status"], "failed")
        self.assertRegex(dx3d["series"][self.dx3d_series]["message"], "series of 2 images \\(3D series\\)")
        lat = studies[self.lat.StudyInstanceUID]["series"][self.lat.SeriesInstanceUID]
        self.assertEqual(lat["status"], "skipped")
        self.assertIn("view position LL is not frontal", lat["message"])
        rejected = {r["file"]: r["reason"] for r in st["rejected_files"]}
        self.assertEqual(set(rejected), {self.truncated, self.text})
        self.assertFalse(os.path.exists(os.path.join(self.out, self.ct_study)))

    def test_seg_geometry_labels_and_exact_masks(self):
        # read with pydicom: highdicom 0.28's segread rejects the Pixel Measures that highdicom itself writes for a
        # projection image (PixelSpacing without SliceThickness, which DICOM allows there); see docs/deploy.md
        import pydicom

        for ds, box, path in ((self.ds_a, self.box_a, self.path_a), (self.ds_b, self.box_b, self.path_b)):
            seg = pydicom.dcmread(os.path.join(self._folder(ds), "seg.dcm"))
            self.assertEqual((seg.SOPClassUID, seg.Modality, seg.SegmentationType), (SEG_STORAGE, "SEG", "BINARY"))
            self.assertEqual((seg.Rows, seg.Columns), (ds.Rows, ds.Columns))
            self.assertNotEqual(ds.Rows, ds.Columns)
            self.assertEqual((seg.StudyInstanceUID, seg.PatientID), (ds.StudyInstanceUID, ds.PatientID))
            ref = seg.ReferencedSeriesSequence[0]
            self.assertEqual(ref.SeriesInstanceUID, ds.SeriesInstanceUID)
            self.assertEqual(ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID, ds.SOPInstanceUID)
            labels = [s.SegmentLabel for s in seg.SegmentSequence]
            self.assertEqual(labels, ["Nodule", "Pleural effusion", "Left mass"])
            self.assertEqual([int(s.SegmentNumber) for s in seg.SegmentSequence], [1, 2, 3])
            frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
            self.assertEqual(len(frames), 3)  # one frame per segment, empty ones kept
            expected = self._expected(path)["masks"][0].numpy()
            for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
                k = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber) - 1
                src = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                self.assertEqual(src, ds.SOPInstanceUID)
                np.testing.assert_array_equal(frame.astype(bool), expected[k])
                ys, xs = np.nonzero(frame)
                y0, y1, x0, x1 = box
                # the brightness heatmap's segment lies on the bright block (smoothing shrinks it at 0.5)
                self.assertTrue(y0 <= ys.min() and ys.max() < y1 and x0 <= xs.min() and xs.max() < x1,
                                (ys.min(), ys.max(), xs.min(), xs.max(), box))
                self.assertGreater(len(ys), 0.3 * (y1 - y0) * (x1 - x0))

    def test_sr_scores_and_boxes(self):
        import pydicom

        for ds, path in ((self.ds_a, self.path_a), (self.ds_b, self.path_b)):
            folder = self._folder(ds)
            sr = pydicom.dcmread(os.path.join(folder, "sr.dcm"))
            self.assertEqual((sr.SOPClassUID, sr.Modality), (BASIC_TEXT_SR, "SR"))
            self.assertEqual((sr.StudyInstanceUID, sr.PatientID), (ds.StudyInstanceUID, ds.PatientID))
            text = sr.ContentSequence[0].TextValue
            with open(os.path.join(folder, "result.json")) as f:
                res = json.load(f)
            exp = self._expected(path)
            self.assertEqual(res["size"], {"rows": ds.Rows, "columns": ds.Columns})
            for k, finding in enumerate(res["findings"]):
                self.assertAlmostEqual(finding["score"], float(exp["scores"][0, k]), places=5)
                self.assertEqual(finding["boxes"], json.loads(json.dumps(exp["boxes"][0][k])))
                box = ", ".join(str(int(v)) for v in finding["boxes"][0]["box"])
                self.assertIn(f"{finding['label']} (prompt '{finding['prompt']}'): score {finding['score']:.4f}; "
                              f"box 1 [{box}]", text)
            for k in range(3):
                from PIL import Image

                with Image.open(os.path.join(folder, f"overlay_{k:02d}.png")) as im:
                    self.assertGreater(im.size[0], 50)


@needs_deploy
class TestDeployAppRealModel(unittest.TestCase):
    """A tiny real AFLoc (resnet10 + tiny BERT): TorchScript export from the command line and eager in-process."""

    @classmethod
    def setUpClass(cls):
        import torch

        from monai_afloc.apps.deploy.predictor import export_deploy_model
        from monai_afloc.checkpoint import save_afloc_checkpoint
        from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder

        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        torch.manual_seed(0)
        bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32)
        net = AFLoc(AFLocImageEncoder("resnet10", embed_dim=32, input_size=None), AFLocTextEncoder(bert)).eval()
        cls.ckpt = save_afloc_checkpoint(net, os.path.join(root, "ckpt"))
        cls.ts = export_deploy_model(net, os.path.join(root, "ts"), ["nodule", "pleural effusion", "left mass"])
        cls.inp = os.path.join(root, "in")
        os.makedirs(cls.inp)
        cls.path = write_dx_dicom(os.path.join(cls.inp, "a.dcm"), _bright_image(100, 70, (20, 40, 30, 60)),
                                  photometric="MONOCHROME2")
        cls.config = os.path.join(root, "app.yaml")
        with open(cls.config, "w") as f:
            json.dump(FINDINGS | {"outputs": {"png": False}}, f)  # JSON is YAML

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _result(self, out):
        (path,) = glob.glob(os.path.join(out, "*", "*", "result.json"))
        with open(path) as f:
            return json.load(f)

    def test_torchscript_cli_and_eager_in_process_agree(self):
        import pydicom

        from monai_afloc.apps.deploy import run_app

        out_ts, out_eager = os.path.join(self.tmp.name, "out_ts"), os.path.join(self.tmp.name, "out_eager")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=_ROOT)
        cmd = [sys.executable, os.path.join(_ROOT, "sample_apps", "deploy_afloc"), "-i", self.inp, "-o", out_ts,
               "-m", self.ts, "-c", self.config]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])
        self.assertIn("AFLoc deploy app: ok", proc.stdout)
        report = run_app(self.inp, out_eager, self.ckpt, config=self.config)
        self.assertEqual(report["status"], "ok")
        ts, eager = self._result(out_ts), self._result(out_eager)
        self.assertEqual([f["label"] for f in ts["findings"]], ["Nodule", "Pleural effusion", "Left mass"])
        np.testing.assert_allclose([f["score"] for f in ts["findings"]], [f["score"] for f in eager["findings"]],
                                   atol=1e-4)
        for a, b in zip(ts["findings"], eager["findings"]):
            self.assertLessEqual(abs(a["mask_pixels"] - b["mask_pixels"]), 0.01 * 100 * 70)
        self.assertFalse(glob.glob(os.path.join(out_ts, "*", "*", "*.png")))  # png: false honoured
        seg = pydicom.dcmread(glob.glob(os.path.join(out_ts, "*", "*", "seg.dcm"))[0])
        self.assertEqual((seg.Rows, seg.Columns, len(seg.SegmentSequence)), (100, 70, 3))

    def test_bundle_route_matches_the_app(self):
        """The chest bundle's heatmap head through MonaiBundleInferenceOperator (with the affine set) gives the
        main app's heatmaps, masks and boxes; its SEG has the image's geometry."""
        import pydicom

        from monai_afloc.apps.deploy import run_app
        from monai_afloc.apps.deploy.bundle import export_deploy_bundle
        from monai_afloc.apps.deploy.bundle_app import run_bundle_app

        findings = [("Nodule", "nodule"), ("Pleural effusion", "pleural effusion")]
        bundle = export_deploy_bundle(self.ckpt, os.path.join(self.tmp.name, "bundle"), findings)  # its sigma
        cfg = {"findings": ["Nodule", "Pleural effusion"], "outputs": {"png": False}}
        out_b, out_m = os.path.join(self.tmp.name, "out_bundle"), os.path.join(self.tmp.name, "out_main")
        self.assertEqual(run_bundle_app(self.inp, out_b, bundle, config=cfg)["status"], "ok")
        self.assertEqual(run_app(self.inp, out_m, self.ckpt, config=cfg)["status"], "ok")
        via_bundle, main = self._result(out_b), self._result(out_m)
        for a, b in zip(via_bundle["findings"], main["findings"]):
            self.assertEqual(a["label"], b["label"])
            self.assertIsNone(a["score"])  # the bundle operator forwards one output: no cosine score
            self.assertLessEqual(abs(a["mask_pixels"] - b["mask_pixels"]), 5)
            self.assertEqual([x["box"] for x in a["boxes"]][:1], [x["box"] for x in b["boxes"]][:1])
        seg = pydicom.dcmread(glob.glob(os.path.join(out_b, "*", "*", "seg.dcm"))[0])
        self.assertEqual((seg.Rows, seg.Columns, len(seg.SegmentSequence)), (100, 70, 2))
        sr = pydicom.dcmread(glob.glob(os.path.join(out_b, "*", "*", "sr.dcm"))[0])
        self.assertIn("Nodule (prompt 'nodule'): score n/a;", sr.ContentSequence[0].TextValue)

    def test_unknown_prompt_for_torchscript_fails_before_any_study(self):
        from monai_afloc.apps.deploy import run_app

        out = os.path.join(self.tmp.name, "out_bad")
        with self.assertRaisesRegex(ValueError, "were not exported with this TorchScript model"):
            run_app(self.inp, out, self.ts, config={"findings": ["Edema"]})
        with open(os.path.join(out, "status.json")) as f:
            status = json.load(f)
        self.assertEqual(status["status"], "failed")
        self.assertIn("were not exported", status["errors"][0])
        self.assertEqual(status["studies"], {})

    def test_cli_bad_model_exits_2(self):
        empty = tempfile.mkdtemp(dir=self.tmp.name)
        out = os.path.join(self.tmp.name, "out_cli_bad")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=_ROOT)
        proc = subprocess.run([sys.executable, os.path.join(_ROOT, "sample_apps", "deploy_afloc"), "-i", self.inp,
                               "-o", out, "-m", empty], capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
        self.assertIn("neither a TorchScript deploy folder", proc.stderr)
        with open(os.path.join(out, "status.json")) as f:
            self.assertEqual(json.load(f)["status"], "failed")


@needs_deploy
class TestDeployEntryPoint(unittest.TestCase):
    """The Deploy part of tests/test_entry_points.py: the app's inference operator, built by the app from ``-m
    CHECKPOINT``, receives the Python API's heatmaps (1e-5) for a checkpoint trained at a non-default size."""

    def test_operator_heatmaps_equal_the_api(self):
        from unittest import mock

        from monai_afloc.apps.deploy import run_app
        from monai_afloc.apps.deploy.predictor import AFLocPredictor
        from monai_afloc.inferers import TextPromptLocalizer

        prompts = ["left pleural effusion", "cardiomegaly"]
        with tempfile.TemporaryDirectory() as root:
            ckpt, _, dcm = write_sized_checkpoint(root)
            inp = os.path.join(root, "in")
            os.makedirs(inp)
            dcm = shutil.copy(dcm, os.path.join(inp, "cxr.dcm"))
            ref = TextPromptLocalizer.from_checkpoint(ckpt)(dcm, prompts)["heatmaps"][0].numpy()
            seen = []
            original = AFLocPredictor.__call__

            def record(self, path):
                out = original(self, path)
                seen.append(out["heatmaps"])
                return out

            config = {"findings": [], "prompts": [{"label": f"P{k}", "prompt": p} for k, p in enumerate(prompts)],
                      "outputs": {"png": False}}
            with mock.patch.object(AFLocPredictor, "__call__", record):
                report = run_app(inp, os.path.join(root, "out"), ckpt, config=config)
            self.assertEqual(report["status"], "ok", report)
            self.assertEqual(len(seen), 1)
            np.testing.assert_allclose(seen[0], ref, atol=1e-5, rtol=0)


@needs_deploy
class TestDeployTutorial(unittest.TestCase):
    def test_tutorial_runs(self):
        spec = importlib.util.spec_from_file_location("deploy_tut", os.path.join(_ROOT, "tutorials", "deploy_app.py"))
        tut = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tut)
        with tempfile.TemporaryDirectory() as d:
            bert = make_tiny_bert(os.path.join(d, "bert"), hidden_size=32)
            res = tut.main(["--out", d, "--text-model", bert, "--studies", "2"])
            self.assertEqual(res["report"]["status"], "partial")  # the CT study and the text file are reported
            self.assertEqual(len(res["seg_files"]), 2)


class TestDeployOptional(unittest.TestCase):
    def test_core_import_does_not_load_deploy(self):
        # where MONAI Deploy is installed, `import monai` itself may load it (namespace package): only what
        # monai_afloc adds on top of `import monai` counts
        code = (
            "import sys, monai; "
            "deploy = lambda: {m for m in sys.modules if m.startswith(('monai.deploy', 'holoscan', 'highdicom', "
            "'monai_afloc.apps.deploy'))}; "
            "before = deploy(); "
            "import monai_afloc, monai_afloc.inferers, monai_afloc.export, monai_afloc.apps.outputs, monai_afloc.cli; "
            "added = deploy() - before; print(sorted(added)); sys.exit(1 if added else 0)"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=_ROOT))
        self.assertEqual(proc.returncode, 0, proc.stdout[-2000:] + proc.stderr[-2000:])


if __name__ == "__main__":
    unittest.main()
