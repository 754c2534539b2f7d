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
"""The CLI checks ``--out`` before any work, writes classification results as they come, refuses tiny images."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch
from PIL import Image

from monai_afloc.cli import main
from monai_afloc.inferers.zero_shot import ZeroShotClassifier
from monai_afloc.transforms.image import MIN_IMAGE_SIZE, AFLocImagePreprocess
from tests.reliability._common import tiny_checkpoint


def _run(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


class TestCLIOutputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        _, cls.ckpt = tiny_checkpoint(root)
        cls.pngs = []
        for i in range(3):
            img = np.full((64, 48), 40 + 30 * i, np.uint8)
            img[10:30, 20:40] = 250
            cls.pngs.append(os.path.join(root, f"cxr{i}.png"))
            Image.fromarray(img).save(cls.pngs[-1])
        cls.dot = os.path.join(root, "dot.png")
        Image.fromarray(np.full((1, 1), 200, np.uint8)).save(cls.dot)
        cls.a_file = os.path.join(root, "a_file.txt")
        with open(cls.a_file, "w") as f:
            f.write("x")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_bad_out_fails_before_the_model_loads(self):
        for out in (self.a_file, os.path.join(self.a_file, "sub")):
            for command in (["classify"], ["localize", "--prompt", "effusion"]):
                with self.subTest(out=out, command=command[0]):
                    with mock.patch("monai_afloc.cli._build", side_effect=AssertionError("model loaded")):
                        code, err = _run([*command, self.pngs[0], "--checkpoint", self.ckpt, "--out", out, "--quiet"])
                    self.assertEqual(code, 2)
                    self.assertEqual(len(err.strip().splitlines()), 1, err)
                    self.assertIn("--out", err)

    def test_classify_writes_results_as_they_come(self):
        out = os.path.join(self.tmp.name, "cls_crash")
        real, calls = ZeroShotClassifier.__call__, []

        def crash_on_third(self_, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt  # e.g. the user stops a long run, or the machine goes down
            return real(self_, *args, **kwargs)

        with mock.patch.object(ZeroShotClassifier, "__call__", crash_on_third):
            with self.assertRaises(KeyboardInterrupt):
                _run(["classify", *self.pngs, "--checkpoint", self.ckpt, "--out", out, "--quiet",
                      "--findings", "Edema", "--findings", "Pneumothorax"])
        with open(os.path.join(out, "classification.jsonl"), encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        self.assertEqual([r["image"] for r in rows], self.pngs[:2])
        self.assertEqual(sorted(rows[0]["scores"]), ["Edema", "Pneumothorax"])

    def test_tiny_image_is_refused(self):
        out = os.path.join(self.tmp.name, "tiny")
        code, err = _run(["localize", self.dot, self.pngs[0], "--checkpoint", self.ckpt, "--out", out, "--quiet",
                          "--prompt", "effusion", "--no-overlay"])
        self.assertEqual(code, 1)
        self.assertIn(f"at least {MIN_IMAGE_SIZE} x {MIN_IMAGE_SIZE}", err)
        # no folder, not even a partial one, for the dot (results.json: the runner's summary, naming the failure)
        self.assertEqual(sorted(os.listdir(out)), ["cxr0", "results.json"])
        code, err = _run(["classify", self.dot, "--checkpoint", self.ckpt, "--out", out, "--quiet",
                          "--findings", "Edema"])
        self.assertEqual(code, 1)
        with open(os.path.join(out, "classification.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["results"], {})  # no confident-looking score for a 1 x 1 image

    def test_localize_never_leaves_half_a_folder(self):
        out = os.path.join(self.tmp.name, "loc_crash")
        argv = ["localize", *self.pngs[:2], "--checkpoint", self.ckpt, "--out", out, "--quiet", "--prompt",
                "effusion", "--no-overlay"]
        self.assertEqual(_run([a for a in argv if a != self.pngs[1]])[0], 0)  # a first, complete run of cxr0
        real, calls = __import__("monai_afloc.apps.runner", fromlist=["save_mask_png"]).save_mask_png, []

        def fail_on_second(*args, **kwargs):  # the disk fills up while cxr1's files are written
            calls.append(1)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)

        with mock.patch("monai_afloc.apps.runner.save_mask_png", fail_on_second):
            code, err = _run(argv)
        self.assertEqual(code, 1)
        self.assertIn("No space left", err)
        # cxr0 rewritten completely, cxr1's failed folder removed (never half a folder, no .partial left)
        self.assertEqual(sorted(os.listdir(out)), ["cxr0", "results.json"])
        with open(os.path.join(out, "cxr0", "result.json"), encoding="utf-8") as f:
            self.assertTrue(os.path.isfile(os.path.join(out, json.load(f)["prompts"][0]["mask"])))

    def test_preprocess_minimum_size(self):
        AFLocImagePreprocess()(torch.zeros(MIN_IMAGE_SIZE, 300))
        with self.assertRaisesRegex(ValueError, "15 x 300 pixels"):
            AFLocImagePreprocess()(torch.zeros(MIN_IMAGE_SIZE - 1, 300))


if __name__ == "__main__":
    unittest.main()
