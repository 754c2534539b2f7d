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
The bundle as the MONAI model-zoo's CI runs it (``ci/verify_bundle.py``: ``verify_metadata``, ``verify_net_in_out``,
``ckpt_export`` with ``models/model.pt``), the weights converters both ways, and ``evaluate_mscxr.json`` on a small
fixture in the published MS-CXR layout; all on tiny networks built here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from PIL import Image

from monai_afloc.apps.evaluation import item_frame_mask
from monai_afloc.checkpoint import (
    bundle_state_dict_to_checkpoint,
    bundle_text_model,
    checkpoint_to_bundle_state_dict,
    load_afloc_checkpoint,
    load_bundle_network,
    load_bundle_state_dict,
    load_bundle_weights,
    network_architecture,
    save_afloc_checkpoint,
)
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from monai_afloc.transforms.image.geometry import geometry_for_size
from tests.helpers import SkipIfNoModule, make_tiny_bert

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(_REPO, "bundles", "afloc_chest_xray_localization")
CONFIGS = os.path.join(BUNDLE, "configs")
META = os.path.join(CONFIGS, "metadata.json")
SCHEMA = os.path.join(BUNDLE, "docs", "metadata_schema.json")
INFERENCE = os.path.join(CONFIGS, "inference.json")


def _inference_parser(**overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(INFERENCE)
    parser.read_meta(META)
    parser.update({"bundle_root": BUNDLE, "device": "$torch.device('cpu')", **overrides})
    return parser


class TestModelZooBundle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.tmp = tempfile.mkdtemp()
        cls.bert = make_tiny_bert(os.path.join(cls.tmp, "bert"), hidden_size=32)
        net = AFLoc(AFLocImageEncoder("resnet18", embed_dim=32, input_size=None), AFLocTextEncoder(cls.bert))
        cls.ckpt = save_afloc_checkpoint(net.eval(), os.path.join(cls.tmp, "ckpt"), extra={"image_size": 64})
        cls.model_pt = os.path.join(cls.tmp, "bundle_models", "model.pt")
        cls.arch = checkpoint_to_bundle_state_dict(cls.ckpt, cls.model_pt)
        # the bundle keys that describe this network (a state dict records no architecture)
        cls.keys = {"text_model": cls.bert, "backbone": "resnet18", "encoder_input_size": None}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_network_def_describes_the_architecture(self):
        with open(INFERENCE, encoding="utf-8") as f:
            raw = json.load(f)
        self.assertEqual(raw["network_def"]["_target_"], "monai_afloc.networks.nets.AFLoc")  # no checkpoint in it
        self.assertNotIn("checkpoint", json.dumps(raw["network_def"]))
        net = _inference_parser(**self.keys).get_parsed_content("network_def")
        self.assertEqual(network_architecture(net), self.arch)
        # with a checkpoint folder and no text_model, the folder's own text model describes it (not the default)
        parser = _inference_parser(checkpoint=self.ckpt)
        self.assertEqual(network_architecture(parser.get_parsed_content("network_def")), self.arch)
        self.assertEqual(parser.get_parsed_content("network").text_encoder.embed_dim, 32)
        self.assertEqual(bundle_text_model(self.model_pt), None)  # a state dict names no text model
        self.assertEqual(bundle_text_model(self.ckpt, "/models/x"), "/models/x")

    def test_weights_both_ways(self):
        state = torch.load(self.model_pt, weights_only=True)  # a plain state dict, no pickled code
        reference = load_afloc_checkpoint(self.ckpt)
        self.assertEqual(set(state), set(reference.state_dict()))
        net = load_bundle_network(_inference_parser(**self.keys).get_parsed_content("network_def"), self.model_pt)
        for k, v in reference.state_dict().items():
            torch.testing.assert_close(net.state_dict()[k], v, msg=k)
        # and back: model.pt -> a checkpoint folder that records the architecture
        back = bundle_state_dict_to_checkpoint(self.model_pt, _inference_parser(**self.keys).get_parsed_content(
            "network_def"), os.path.join(self.tmp, "back"))
        again = load_afloc_checkpoint(back)
        self.assertEqual(network_architecture(again), self.arch)
        for k, v in reference.state_dict().items():
            torch.testing.assert_close(again.state_dict()[k], v, msg=k)
        # the bundle script does the same
        sys.path.insert(0, BUNDLE)
        try:
            from scripts.convert import main as convert

            out_pt = os.path.join(self.tmp, "script", "model.pt")
            self.assertEqual(convert(["to-bundle", self.ckpt, out_pt]), 0)
            self.assertEqual(set(load_bundle_state_dict(out_pt)), set(state))
            self.assertEqual(convert(["from-bundle", out_pt, os.path.join(self.tmp, "script_ckpt"),
                                      "--override", f"text_model={self.bert}"]), 0)
            self.assertEqual(network_architecture(load_afloc_checkpoint(os.path.join(self.tmp, "script_ckpt"))),
                             self.arch)
        finally:
            sys.path.remove(BUNDLE)

    def test_bad_weights_are_refused(self):
        nested = os.path.join(self.tmp, "nested.pt")
        torch.save({"model": load_bundle_state_dict(self.model_pt), "epoch": 3}, nested)
        with self.assertRaisesRegex(ValueError, "plain state dict"):
            load_bundle_state_dict(nested)
        # another architecture: the state dict shows it (a 64-wide text model) and nothing is loaded
        wide = make_tiny_bert(os.path.join(self.tmp, "bert64"), hidden_size=64)
        other = _inference_parser(text_model=wide).get_parsed_content("network_def")
        before = {k: v.clone() for k, v in other.state_dict().items()}
        with self.assertRaisesRegex(ValueError, "nothing was loaded"):
            load_bundle_weights(other, self.model_pt)
        for k, v in before.items():
            self.assertTrue(torch.equal(other.state_dict()[k], v), k)
        # an architecture difference no weight shows (the stem's max-pool): refused in place, by name
        no_pool = _inference_parser(stem_pool=False, **self.keys).get_parsed_content("network_def")
        with self.assertRaisesRegex(ValueError, "stem_pool"):
            load_bundle_weights(no_pool, self.ckpt)
        # the inference route uses the architecture a checkpoint folder records (with a warning), never the other
        with self.assertLogs("monai_afloc.checkpoint", level="WARNING") as logs:
            used = load_bundle_network(no_pool, self.ckpt)
        self.assertTrue(used.image_encoder.stem_pool)
        self.assertIn("stem_pool", "\n".join(logs.output))

    @SkipIfNoModule("jsonschema")
    def test_verify_metadata_like_the_model_zoo(self):
        from monai.bundle import verify_metadata

        verify_metadata(meta_file=META, filepath=SCHEMA)  # an existing schema file is read, not downloaded
        with open(META, encoding="utf-8") as f:
            meta = json.load(f)
        self.assertIn("20240725", meta["schema"])
        self.assertEqual(set(meta["supported_apps"]), {"monai-label", "monai-deploy-app-sdk"})
        self.assertIn("eval_metrics", meta)
        self.assertNotIn("monai-afloc", meta["required_packages_version"])  # not on PyPI: its source is given
        self.assertIn("monai-afloc", meta["required_packages_source"])
        # the official schema's required keys (meta_schema_20240725.json) are required by the local one too
        import jsonschema

        with open(SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        for key in ("schema", "version", "monai_version", "pytorch_version", "numpy_version",
                    "required_packages_version", "task", "description", "authors", "copyright",
                    "network_data_format"):
            broken = {k: v for k, v in meta.items() if k != key}
            with self.assertRaises(jsonschema.ValidationError, msg=key):
                jsonschema.validate(broken, schema)
        for key, bad in (("eval_metrics", [1]), ("supported_apps", "monai-label"), ("references", "x")):
            with self.assertRaises(jsonschema.ValidationError, msg=key):
                jsonschema.validate({**meta, key: bad}, schema)

    def test_verify_net_in_out_heatmap_head(self):
        from monai.bundle import verify_net_in_out

        # image + one prompt vector -> one heatmap channel, as metadata's "pred" declares
        verify_net_in_out(net_id="heatmap_head", meta_file=META, config_file=INFERENCE, device="cpu",
                          extra_forward_args={"prompt_embeddings": torch.randn(1, 32)}, bundle_root=BUNDLE,
                          checkpoint=self.model_pt, **self.keys)

    def test_verify_net_in_out_default_net_id(self):
        self.skipTest("network_def is AFLoc: an image and text tokens in, a dict of embeddings out, so the model-zoo "
                      "default (network_def, image only, one tensor out) does not apply; in model-zoo terms the bundle "
                      "is in exclude_verify_shape_list, as the VISTA bundles are; heatmap_head is checked instead "
                      "(docs/README.md, 'Checks')")

    def test_ckpt_export_image_encoder(self):
        from monai.bundle import ckpt_export

        out = os.path.join(self.tmp, "export", "image_encoder.ts")
        os.makedirs(os.path.dirname(out))
        ckpt_export(net_id="image_encoder_export", filepath=out, ckpt_file=self.model_pt, meta_file=META,
                    config_file=INFERENCE, bundle_root=BUNDLE, use_trace=True, input_shape=[1, 3, 64, 64],
                    **self.keys)
        ts = torch.jit.load(out)
        encoder = load_afloc_checkpoint(self.ckpt).image_encoder.eval()
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            eager = encoder(x)
            traced = ts(x)
        for got, key in zip(traced, ("image_words", "image_sentences", "image_report")):
            torch.testing.assert_close(got, eager[key], atol=1e-4, rtol=1e-4)

    def test_item_frame_mask_release_protocol(self):
        g = geometry_for_size(448, 448, 224)  # scale 0.5, no padding
        mask = item_frame_mask({"image": "x", "boxes": [[11.0, 21.0, 40.0, 30.0]], "width": 448, "height": 448}, g)
        expected = np.zeros((224, 224), bool)
        expected[10:25, 5:25] = True  # floor(5.5), floor(10.5), w 20, h 15 in the frame
        np.testing.assert_array_equal(mask, expected)
        with self.assertRaisesRegex(KeyError, "mask"):
            item_frame_mask({"image": "x"}, g)

    def test_evaluate_mscxr_on_the_published_layout(self):
        root = os.path.join(self.tmp, "mimic-cxr-jpg", "2.0.0")
        ms = os.path.join(self.tmp, "ms-cxr")
        os.makedirs(ms)
        rng = np.random.default_rng(0)
        images, annotations = [], []
        cats = [{"id": 1, "name": "Pneumonia"}, {"id": 2, "name": "Pleural effusion"}]
        for i in range(4):
            rel = f"files/p1{i}/p1{i}00000{i}/s5{i}000000/dicom{i}.jpg"
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (96, 80), dtype=np.uint8)).save(os.path.join(root, rel))
            images.append({"id": i, "file_name": f"dicom{i}.jpg", "path": rel, "width": 80, "height": 96})
            annotations.append({"id": 2 * i, "image_id": i, "category_id": 1 + i % 2, "bbox": [10, 12, 30, 25],
                                "label_text": "Patchy opacity" if i % 2 == 0 else "Small effusion"})
        # a second box of the same phrase on image 0: merged into one item, as in the release
        annotations.append({"id": 99, "image_id": 0, "category_id": 1, "bbox": [50, 60, 20, 20],
                            "label_text": "patchy opacity"})
        with open(os.path.join(ms, "MS_CXR_Local_Alignment_v1.0.0.json"), "w", encoding="utf-8") as f:
            json.dump({"images": images, "annotations": annotations, "categories": cats}, f)
        out = os.path.join(self.tmp, "eval_mscxr")
        wf = ConfigWorkflow(
            config_file=[os.path.join(CONFIGS, n) for n in ("train.json", "evaluate.json", "evaluate_mscxr.json")],
            meta_file=META, logging_file=os.path.join(CONFIGS, "logging.conf"), workflow_type="eval",
            bundle_root=BUNDLE, ms_cxr_dir=ms, mimic_cxr_jpg_root=root, checkpoint=self.ckpt, output_dir=out,
            n_bootstrap=20, device="$torch.device('cpu')", **self.keys,
        )
        wf.initialize()
        metrics = wf.run()[0]
        wf.finalize()
        self.assertEqual(set(metrics), {"afloc", "shuffled"})  # no prior and no detection for MS-CXR
        report = metrics["afloc"]
        self.assertEqual(report["n"], 4)
        self.assertEqual({k: v["n"] for k, v in report["per_category"].items()},
                         {"Pneumonia": 2, "Pleural effusion": 2})
        lo, hi = report["ci95"]["iou"]
        self.assertLessEqual(lo, hi)
        self.assertNotIn("location_bearing", report)  # MS-CXR has one prompt per item, its phrase
        with open(os.path.join(out, "table.md"), encoding="utf-8") as f:
            table = f.read()
        self.assertIn("| afloc | Pleural effusion | 2 |", table)
        self.assertIn("| afloc | all (95% CI) | 4 |", table)


if __name__ == "__main__":
    unittest.main()
