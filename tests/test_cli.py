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
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch
from PIL import Image

import monai_afloc
from monai_afloc.checkpoint import save_afloc_checkpoint
from monai_afloc.cli import build_parser, main, parse_findings, parse_overrides, resolve_device
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from tests.helpers import make_tiny_bert, write_dx_dicom


def _run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


class TestCLI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32)
        net = AFLoc(AFLocImageEncoder("resnet18", embed_dim=32, input_size=None), AFLocTextEncoder(bert))
        cls.ckpt = save_afloc_checkpoint(net, os.path.join(root, "ckpt"))
        img = np.full((120, 80), 40, np.uint8)
        img[20:40, 50:70] = 250
        cls.png = os.path.join(root, "cxr.png")
        Image.fromarray(img).save(cls.png)
        cls.dcm = write_dx_dicom(os.path.join(root, "cxr.dcm"), img.T.astype(np.uint16) * 8)
        cls.corrupt = os.path.join(root, "broken.dcm")
        with open(cls.corrupt, "wb") as f:
            f.write(b"\x00" * 128 + b"DICM" + b"garbage")
        cls.volume = os.path.join(root, "ct.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((16, 16, 8), np.float32), np.eye(4)), cls.volume)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_localize_writes_outputs_and_reports_bad_images(self):
        out = os.path.join(self.tmp.name, "out_loc")
        missing = os.path.join(self.tmp.name, "missing.png")
        argv = ["localize", self.png, missing, self.corrupt, self.volume, self.dcm, "--prompt", "left effusion"]
        argv += ["--prompt", "cardiomegaly", "--checkpoint", self.ckpt, "--out", out, "--quiet"]
        code, err = _run(argv)
        self.assertEqual(code, 1)  # some images failed
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
        self.assertEqual(len(lines), 3, err)
        for bad in (missing, self.corrupt, self.volume):
            self.assertTrue(any(bad in ln for ln in lines), err)
        for name, shape in (("cxr", (120, 80)), ("cxr_1", (80, 120))):  # the DICOM holds the transposed image
            res = json.load(open(os.path.join(out, name, "result.json")))
            self.assertEqual(res["size"], list(shape))
            self.assertEqual([p["prompt"] for p in res["prompts"]], ["left effusion", "cardiomegaly"])
            self.assertEqual(res["prompts"][0]["overlay"], f"{name}/overlay_00.png")  # relative to --out
            self.assertTrue(os.path.isfile(os.path.join(out, res["prompts"][0]["overlay"])))
            mask = np.asarray(Image.open(os.path.join(out, res["prompts"][1]["mask"])))
            self.assertEqual(mask.shape, shape)
            vol = nib.load(os.path.join(out, name, "heatmaps.nii.gz")).get_fdata()
            self.assertEqual(vol.shape, (shape[1], shape[0], 2))
        self.assertFalse(os.path.exists(os.path.join(out, "missing")))
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            run = json.load(f)
        prov = run["provenance"]  # what produced the folder
        self.assertEqual(prov["checkpoint"], os.path.abspath(self.ckpt))
        self.assertEqual(prov["monai_afloc_version"], monai_afloc.__version__)
        self.assertEqual(prov["device"], "cpu")
        self.assertEqual(set(prov["settings"]), {"image_size", "sigma", "threshold", "region_key", "text_key",
                                                 "max_length"})
        self.assertEqual(prov["argv"], argv)
        self.assertEqual(sorted(run["failures"]), sorted([missing, self.corrupt, self.volume]))
        self.assertEqual(run["results"][0]["files"]["heatmaps"], "cxr/heatmaps.nii.gz")

    def test_folder_of_images_is_expanded_sorted(self):
        folder = os.path.join(self.tmp.name, "folder")
        os.makedirs(os.path.join(folder, "sub"))
        for name in ("b.png", "a.png"):
            Image.open(self.png).save(os.path.join(folder, name))
        open(os.path.join(folder, "notes.txt"), "w").close()  # not an image: skipped
        out = os.path.join(self.tmp.name, "out_folder")
        code, err = _run(["localize", folder, "--prompt", "effusion", "--checkpoint", self.ckpt, "--out", out,
                          "--quiet", "--no-overlay"])
        self.assertEqual(code, 0, err)
        with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
            images = [r["image"] for r in json.load(f)["results"]]
        self.assertEqual(images, [os.path.join(folder, "a.png"), os.path.join(folder, "b.png")])
        empty = os.path.join(self.tmp.name, "empty")
        os.makedirs(empty)
        code, err = _run(["localize", empty, "--prompt", "effusion", "--checkpoint", self.ckpt, "--out", out])
        self.assertEqual(code, 2)
        self.assertIn("holds no image file", err)

    def test_version_help_defaults_and_device(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as cm:
            main(["--version"])
        self.assertEqual(cm.exception.code, 0)
        self.assertEqual(out.getvalue().strip(), f"monai-afloc {monai_afloc.__version__}")
        text = build_parser()._subparsers._group_actions[0].choices["localize"].format_help()
        self.assertIn("(default: auto)", " ".join(text.split()))
        self.assertIn("(default: 2048)", " ".join(text.split()))
        self.assertNotIn("(default: None)", text)
        self.assertEqual(resolve_device("auto"), "cuda" if torch.cuda.is_available() else "cpu")
        self.assertEqual(resolve_device("cuda:1"), "cuda:1")
        with self.assertRaisesRegex(ValueError, "torch device"):
            resolve_device("gpu0")
        code, err = _run(["localize", self.png, "--prompt", "x", "--checkpoint", self.ckpt, "--device", "gpu0",
                          "--out", os.path.join(self.tmp.name, "never")])
        self.assertEqual(code, 2)
        self.assertIn("--device", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "never")))  # refused before any work

    def test_classify(self):
        out = os.path.join(self.tmp.name, "out_cls")
        # --findings is repeatable (and takes comma-separated names): the image paths after it stay image paths
        code, err = _run(["classify", "--findings", "Edema", "--findings", "Cardiomegaly, Pleural Effusion",
                          self.png, self.dcm, "--checkpoint", self.ckpt, "--out", out, "--quiet"])
        self.assertEqual(code, 0, err)
        res = json.load(open(os.path.join(out, "classification.json")))
        self.assertEqual(sorted(res["results"]), sorted([self.png, self.dcm]))
        self.assertEqual(sorted(res["results"][self.png]), ["Cardiomegaly", "Edema", "Pleural Effusion"])
        self.assertEqual(res["provenance"]["findings"], ["Edema", "Cardiomegaly", "Pleural Effusion"])
        self.assertEqual(res["provenance"]["checkpoint"], os.path.abspath(self.ckpt))
        self.assertEqual(parse_findings(None), None)
        with self.assertRaisesRegex(ValueError, "finding names"):
            parse_findings(["Edema,,"])

    def test_bad_checkpoint_and_prompt(self):
        out = os.path.join(self.tmp.name, "out_bad")
        code, err = _run(["localize", self.png, "--prompt", "x y", "--checkpoint", self.png, "--out", out, "--quiet"])
        self.assertEqual(code, 2)
        self.assertIn("error: checkpoint", err)
        code, err = _run(["localize", self.png, "--prompt", "...", "--checkpoint", self.ckpt, "--out", out, "--quiet"])
        self.assertEqual(code, 2)
        self.assertIn("empty prompt", err)


class TestDemoOverrides(unittest.TestCase):
    def test_parse_overrides(self):
        got = parse_overrides(["backbone=resnet50", "image_size=224", "freeze_text_encoder=false",
                               "budget=null", "text=a=b", "weights=[1, 2]"])
        self.assertEqual(got, {"backbone": "resnet50", "image_size": 224, "freeze_text_encoder": False,
                               "budget": None, "text": "a=b", "weights": [1, 2]})
        for bad in ("oops", "=3"):
            with self.assertRaisesRegex(ValueError, "KEY=VALUE"):
                parse_overrides([bad])

    def test_demo_rejects_bad_overrides_before_any_work(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "demo")
            for extra in (["--override", "oops"], ["--override", "seed=3"]):
                err = io.StringIO()
                with contextlib.redirect_stderr(err):
                    self.assertEqual(main(["demo", "--out", out, *extra]), 2)
                self.assertIn("error:", err.getvalue())
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
