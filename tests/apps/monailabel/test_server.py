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
A real MONAI Label server with the AFLoc sample app, called over HTTP (``requests`` and MONAI Label's own client).

One server per test class (started in ``setUpClass``, stopped by PID in ``tearDownClass``):

- ``TestBrightnessServer``: the hand-built brightness network (``--conf network_factory``): its heatmap is the image
  brightness, so a bright rectangle gives a known box; every answer is compared with the in-process localizer;
  bad requests get 4xx with a message and the server stays up.
- ``TestCheckpointServer``: a tiny real AFLoc (ResNet-10 + tiny BERT) from ``--conf checkpoint``/``text_model``.

Skipped without monailabel unless MONAI_AFLOC_REQUIRE_MONAILABEL=1 (CI's MONAI Label venv: then they fail).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import unittest

import numpy as np
import torch
from PIL import Image

from tests.apps.monailabel._server import HAS_MONAILABEL, ServerProcess, check_monailabel, skip_without_monailabel
from tests.helpers import BrightnessAFLoc, make_tiny_bert, write_dx_dicom

RECT_PNG = (120, 200), (30, 60, 140, 180)  # rows x cols; bright rows 30:60, cols 140:180
RECT_DCM = (150, 90), (90, 130, 10, 40)
RECT_JPG = (96, 160), (10, 40, 20, 70)


def rect_image(shape, rect, low=20, high=250):
    img = np.full(shape, low, np.uint8)
    r0, r1, c0, c1 = rect
    img[r0:r1, c0:c1] = high
    return img


def nonzero_box(label: np.ndarray, value: int) -> list[int]:
    ys, xs = np.nonzero(label == value)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


class _ServerTestCase(unittest.TestCase):
    server: ServerProcess

    @classmethod
    def start_server(cls, conf):
        cls.server = ServerProcess(cls.tmp.name, cls.studies, conf).start()
        cls.url = cls.server.url

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "server", None) is not None:
            cls.server.stop()
        cls.tmp.cleanup()

    def infer(self, model, image, params, output="json", files=None, raw_params=None):
        import requests

        query = {"output": output}
        if image is not None:
            query["image"] = image
        data = {"params": raw_params if raw_params is not None else json.dumps(params)}
        return requests.post(f"{self.url}/infer/{model}", params=query, data=data, files=files, timeout=120)

    def assert_up(self):
        import requests

        self.assertTrue(self.server.alive(), self.server.log_tail())
        self.assertEqual(requests.get(self.url + "/info/", timeout=10).status_code, 200)

    def label(self, model, image, params) -> np.ndarray:
        r = self.infer(model, image, params, output="image")
        self.assertEqual(r.status_code, 200, r.text[:500])
        return np.asarray(Image.open(io.BytesIO(r.content)))


@skip_without_monailabel
class TestBrightnessServer(_ServerTestCase):
    @classmethod
    def setUpClass(cls):
        check_monailabel()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.studies = os.path.join(cls.tmp.name, "studies")
        os.makedirs(cls.studies)
        Image.fromarray(rect_image(*RECT_PNG)).save(os.path.join(cls.studies, "rect.png"))
        Image.fromarray(rect_image(*RECT_JPG)).save(os.path.join(cls.studies, "rect_jpg.jpg"), quality=95)
        write_dx_dicom(os.path.join(cls.studies, "rect_dcm.dcm"), rect_image(*RECT_DCM).astype(np.uint16) * 16)
        with open(os.path.join(cls.studies, "broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n but not really")
        cls.outside = os.path.join(cls.tmp.name, "outside.png")  # a valid image outside the datastore
        Image.fromarray(rect_image(*RECT_PNG)).save(cls.outside)
        cls.start_server({"network_factory": "tests.helpers:BrightnessAFLoc", "findings_lungs": "Nodule,Pneumothorax"})
        from monai_afloc.inferers import TextPromptLocalizer

        cls.loc = TextPromptLocalizer(BrightnessAFLoc())  # the app's defaults: sigma 1.5, 224, threshold 0.5

    def expected(self, name, prompts, threshold=0.5):
        return self.loc(os.path.join(self.studies, name), prompts, return_boxes=True, threshold=threshold)

    def test_info_lists_models(self):
        import requests

        info = requests.get(self.url + "/info/", timeout=10).json()
        self.assertEqual(sorted(info["models"]), ["afloc_findings", "afloc_lungs", "afloc_prompt"])
        lungs = info["models"]["afloc_lungs"]
        self.assertEqual(lungs["labels"], ["Nodule", "Pneumothorax"])
        self.assertEqual(lungs["config"], {"prompt": ["Nodule", "Pneumothorax"], "threshold": 0.5, "output": "mask"})
        self.assertEqual((lungs["type"], lungs["dimension"]), ("segmentation", 2))
        self.assertEqual(len(info["models"]["afloc_findings"]["labels"]), 14)
        self.assertEqual(info["models"]["afloc_prompt"]["afloc"]["kind"], "free_text")
        ids = requests.get(self.url + "/datastore/?output=all", timeout=10).json()["objects"]
        self.assertEqual(sorted(ids), ["broken", "rect", "rect_dcm", "rect_jpg"])
        self.assertGreater(self.server.start_seconds, 0)

    def test_mask_and_boxes_exact_on_png(self):
        prompts = ["bright region", "small left pleural effusion"]
        res = self.infer("afloc_prompt", "rect", {"prompt": prompts})
        self.assertEqual(res.status_code, 200, res.text[:500])
        body = res.json()
        ref = self.expected("rect.png", prompts)
        self.assertEqual(body["image_size"], [120, 200])
        self.assertEqual(body["label_names"], {prompts[0]: 1, prompts[1]: 2})
        self.assertEqual([p["prompt"] for p in body["prompts"]], prompts)
        for k in range(2):
            self.assertEqual(body["prompts"][k]["boxes"], ref["boxes"][0][k])  # the localizer's answer, unchanged
            self.assertAlmostEqual(body["prompts"][k]["score"], float(ref["scores"][0, k]), places=5)
        boxes = body["prompts"][0]["boxes"]
        self.assertEqual(len(boxes), 1)
        x, y, w, h = boxes[0]["box"]  # the bright rectangle (cols 140:180, rows 30:60), blurred by the 19-cell grid
        self.assertTrue(abs(x - 140) <= 4 and abs(y - 30) <= 4 and abs(x + w - 180) <= 4 and abs(y + h - 60) <= 4,
                        boxes)
        self.assertEqual(boxes[0]["box"], [143, 30, 34, 31])  # measured once; the brightness net is deterministic
        label = self.label("afloc_prompt", "rect", {"prompt": prompts})
        self.assertEqual((label.shape, label.dtype), ((120, 200), np.uint8))
        self.assertEqual(sorted(np.unique(label).tolist()), [0, 1])  # equal heatmaps: the first prompt wins
        self.assertEqual(nonzero_box(label, 1), boxes[0]["box"])
        self.assert_up()

    def test_dicom_and_jpg_in_source_geometry(self):
        cases = (("rect_dcm", "rect_dcm.dcm", RECT_DCM), ("rect_jpg", "rect_jpg.jpg", RECT_JPG))
        for image, name, (shape, rect) in cases:
            res = self.infer("afloc_lungs", image, {"prompt": ["pneumothorax"], "threshold": 0.3})
            self.assertEqual(res.status_code, 200, res.text[:500])
            body = res.json()
            self.assertEqual(body["image_size"], list(shape))
            self.assertEqual(body["prompts"][0]["prompt"], "Pneumothorax")  # canonical finding name
            self.assertEqual(body["prompts"][0]["text"], "pneumothorax")
            ref = self.expected(name, ["pneumothorax"], threshold=0.3)
            self.assertEqual(body["prompts"][0]["boxes"], ref["boxes"][0][0])
            x, y, w, h = body["prompts"][0]["boxes"][0]["box"]
            r0, r1, c0, c1 = rect
            self.assertTrue(x <= (c0 + c1) / 2 <= x + w and y <= (r0 + r1) / 2 <= y + h, (x, y, w, h))
            label = self.label("afloc_lungs", image, {"prompt": "Pneumothorax", "threshold": 0.3})
            self.assertEqual(label.shape, shape)
            self.assertEqual(nonzero_box(label, 1), [x, y, w, h])

    def test_output_kinds_and_threshold(self):
        import nibabel as nib

        res = self.infer("afloc_prompt", "rect", {"prompt": ["a b", "c d"], "output": "heatmap"}, output="image")
        self.assertEqual(res.status_code, 200, res.text[:300])
        path = os.path.join(self.tmp.name, "heatmaps.nii.gz")
        with open(path, "wb") as f:
            f.write(res.content)
        vol = nib.load(path).get_fdata()
        ref = self.expected("rect.png", ["a b", "c d"])["heatmaps"][0].numpy()
        self.assertEqual(vol.shape, (200, 120, 2))  # MONAI's 2D convention: x (columns), y (rows), prompt
        np.testing.assert_allclose(np.transpose(vol, (2, 1, 0)), ref, atol=1e-6)
        boxes_label = self.label("afloc_prompt", "rect", {"prompt": "a b", "output": "boxes", "threshold": "0.2"})
        box = self.infer("afloc_prompt", "rect", {"prompt": "a b", "output": "boxes", "threshold": "0.2"}).json()
        self.assertEqual(box["threshold"], 0.2)
        self.assertEqual(nonzero_box(boxes_label, 1), box["prompts"][0]["boxes"][0]["box"])
        low = box["prompts"][0]["boxes"][0]["area"]
        high = self.infer("afloc_prompt", "rect", {"prompt": "a b", "threshold": 0.9}).json()
        self.assertLess(high["prompts"][0]["boxes"][0]["area"], low)

    def test_findings_task_defaults_and_clients(self):
        body = self.infer("afloc_findings", "rect", {}).json()
        self.assertEqual(len(body["prompts"]), 14)
        self.assertEqual(body["prompts"][4]["text"], "pulmonary edema")
        from monailabel.client import MONAILabelClient

        client = MONAILabelClient(self.url, tmpdir=self.tmp.name)
        self.assertIn("afloc_prompt", client.info()["models"])
        label_file, params = client.infer("afloc_prompt", "rect", {"prompt": "bright region"})
        self.assertEqual(params["prompts"][0]["boxes"][0]["box"], [143, 30, 34, 31])
        self.assertEqual(np.asarray(Image.open(label_file)).shape, (120, 200))
        with open(self.outside, "rb") as f:  # an uploaded file (MONAI Label keeps a temporary copy) is allowed
            res = self.infer("afloc_prompt", None, {"prompt": "x"}, files={"file": ("up.png", f, "image/png")})
        self.assertEqual(res.status_code, 200, res.text[:300])
        self.assertEqual(res.json()["prompts"][0]["boxes"][0]["box"], [143, 30, 34, 31])

    def test_bad_requests_get_4xx_and_server_stays_up(self):
        outside_rel = os.path.join(self.studies, "..", "outside.png")
        cases = [
            ("afloc_nope", "rect", '{"prompt": "x"}', 404, "unknown model"),
            ("afloc_prompt", "missing_id", '{"prompt": "x"}', 404, "unknown image"),
            ("afloc_prompt", os.path.join(self.studies, "nothere.png"), '{"prompt": "x"}', 404, "unknown image"),
            ("afloc_prompt", "", '{"prompt": "x"}', 400, "no image"),
            ("afloc_prompt", "rect", "not json", 400, "not valid JSON"),
            ("afloc_prompt", "rect", '["prompt", "x"]', 422, "JSON object"),
            ("afloc_prompt", "rect", '[["prompt", "x"]]', 422, "JSON object"),
            ("afloc_prompt", "rect", "{}", 400, "prompt"),
            ("afloc_prompt", "rect", '{"prompt": ""}', 400, "empty"),
            ("afloc_prompt", "rect", '{"prompt": []}', 400, "empty list"),
            ("afloc_prompt", "rect", '{"prompt": ["x", 1]}', 400, "must be a string"),
            ("afloc_prompt", "rect", '{"prompt": "x", "threshold": 1.5}', 400, "threshold"),
            ("afloc_prompt", "rect", '{"prompt": "x", "threshold": "high"}', 400, "threshold"),
            ("afloc_prompt", "rect", '{"prompt": "x", "threshold": true}', 400, "threshold"),
            ("afloc_prompt", "rect", '{"prompt": "x", "output": "dicom"}', 400, "output"),
            ("afloc_lungs", "rect", '{"prompt": ["Mass"]}', 400, "unknown finding"),
            ("afloc_prompt", "broken", '{"prompt": "x"}', 422, "cannot read image"),
            ("afloc_prompt", self.outside, '{"prompt": "x"}', 403, "outside the datastore"),
            ("afloc_prompt", outside_rel, '{"prompt": "x"}', 403, "outside the datastore"),
            ("afloc_prompt", "/etc/passwd", '{"prompt": "x"}', 403, "outside the datastore"),
        ]
        for model, image, raw, status, message in cases:
            with self.subTest(model=model, image=image, params=raw):
                res = self.infer(model, image, None, raw_params=raw)
                self.assertEqual(res.status_code, status, res.text[:500])
                self.assertIn(message, res.json()["detail"])
                self.assert_up()
        # a path inside the datastore is served like its id
        res = self.infer("afloc_prompt", os.path.join(self.studies, "rect.png"), {"prompt": "bright region"})
        self.assertEqual(res.json()["prompts"][0]["boxes"][0]["box"], [143, 30, 34, 31])


@skip_without_monailabel
class TestCheckpointServer(_ServerTestCase):
    @classmethod
    def setUpClass(cls):
        check_monailabel()
        from monai_afloc.checkpoint import save_afloc_checkpoint
        from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder

        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32)
        torch.manual_seed(0)
        net = AFLoc(AFLocImageEncoder("resnet10", embed_dim=32, input_size=None), AFLocTextEncoder(bert)).eval()
        cls.ckpt = save_afloc_checkpoint(net, os.path.join(root, "ckpt"))
        cls.studies = os.path.join(root, "studies")
        os.makedirs(cls.studies)
        rng = np.random.default_rng(0)
        cls.png = rng.integers(0, 255, (80, 112)).astype(np.uint8)
        Image.fromarray(cls.png).save(os.path.join(cls.studies, "cxr.png"))
        write_dx_dicom(os.path.join(cls.studies, "cxr_dcm.dcm"), rng.integers(0, 4095, (100, 72)), bits=16)
        cls.start_server({"checkpoint": cls.ckpt, "text_model": bert, "findings": "Pleural Effusion,Cardiomegaly",
                          "free_text": "false", "threshold": "0.25"})
        from monai_afloc.checkpoint import load_afloc_checkpoint
        from monai_afloc.inferers import TextPromptLocalizer

        net = load_afloc_checkpoint(cls.ckpt, text_model_name_or_path=bert)
        sigma = 1.5 * net.image_encoder.feature_grid_sizes(224)[1][0] / 19  # the bundle's rule
        cls.loc = TextPromptLocalizer(net, sigma=sigma, threshold=0.25)

    def test_checkpoint_answers_match_the_localizer(self):
        import requests

        info = requests.get(self.url + "/info/", timeout=10).json()
        self.assertEqual(sorted(info["models"]), ["afloc_findings"])
        self.assertEqual(info["models"]["afloc_findings"]["config"]["threshold"], 0.25)
        for image, name, shape in (("cxr", "cxr.png", (80, 112)), ("cxr_dcm", "cxr_dcm.dcm", (100, 72))):
            res = self.infer("afloc_findings", image, {})
            self.assertEqual(res.status_code, 200, res.text[:500])
            body = res.json()
            self.assertEqual(body["image_size"], list(shape))
            self.assertEqual([p["text"] for p in body["prompts"]], ["pleural effusion", "cardiomegaly"])
            ref = self.loc(os.path.join(self.studies, name), ["pleural effusion", "cardiomegaly"], return_boxes=True)
            for k in range(2):
                self.assertAlmostEqual(body["prompts"][k]["score"], float(ref["scores"][0, k]), places=4)
                self.assertEqual(body["prompts"][k]["boxes"], ref["boxes"][0][k])
            label = self.label("afloc_findings", image, {"prompt": ["Cardiomegaly", "Pleural Effusion"]})
            self.assertEqual(label.shape, shape)
            hm = ref["heatmaps"][0]
            expected = np.where((hm > 0.25).any(0).numpy(), np.where(hm[0] > hm[1], 2, 1), 0)
            np.testing.assert_array_equal(label, expected)
        res = self.infer("afloc_prompt", "cxr", {"prompt": "x"})
        self.assertEqual(res.status_code, 404)
        self.assert_up()


@unittest.skipIf(HAS_MONAILABEL, "monailabel is installed")
class TestWithoutMONAILabel(unittest.TestCase):
    def test_task_needs_monailabel(self):
        from monai.utils import OptionalImportError

        from monai_afloc.apps.monailabel import AFLocPromptInferTask
        from monai_afloc.inferers import TextPromptLocalizer

        with self.assertRaises(OptionalImportError):
            AFLocPromptInferTask(TextPromptLocalizer(BrightnessAFLoc()))
        from monai_afloc.apps.monailabel.server import install_infer_params_guard

        with self.assertRaises(OptionalImportError):
            install_infer_params_guard()


if __name__ == "__main__":
    unittest.main()
