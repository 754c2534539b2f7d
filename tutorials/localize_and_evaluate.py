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
Tutorial: text-prompted localization with monai_afloc, end to end, offline.

1. Write a few synthetic chest radiographs with ground truth (the same COCO format as MS-CXR).
2. Build an AFLoc network (ResNet image encoder + the offline all-MiniLM-L6-v2 text encoder) — or load a checkpoint
   with ``--checkpoint`` (an AFLoc release ``.ckpt`` or a monai_afloc checkpoint folder, e.g. the demo's).
3. Localize free-text prompts: heatmaps, boxes and overlays in each image's own geometry.
4. Score the heatmaps with the MS-CXR protocol beside the image-shuffled control.

Run: ``python tutorials/localize_and_evaluate.py --out tutorial_out [--checkpoint demo_out/models/afloc]``.
An untrained network gives chance-level numbers: the point here is the API; ``python -m monai_afloc demo`` trains.
"""

from __future__ import annotations

import argparse
import os

from monai_afloc.apps.evaluation import evaluate_localization, format_table, read_synthetic_annotations
from monai_afloc.apps.outputs import save_overlay
from monai_afloc.apps.synthetic import SyntheticCXRGenerator, write_annotated_split
from monai_afloc.inference_settings import default_inference_settings
from monai_afloc.inferers import TextPromptLocalizer
from monai_afloc.networks.nets import afloc_default


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="tutorial_out")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n-images", type=int, default=6)
    parser.add_argument("--text-model", default=None, help="a local Hugging Face model folder (default: MiniLM)")
    args = parser.parse_args(argv)

    # 1. data in the MS-CXR format
    json_path = write_annotated_split(os.path.join(args.out, "data"), args.n_images, SyntheticCXRGenerator(seed=1))
    items = read_synthetic_annotations(json_path)

    # 2. a localizer: a checkpoint brings its own settings (frame size, smoothing, threshold); a fresh network gets
    #    the defaults for it (sigma scaled to its sentence grid: 14x14 for ResNet-18 at 224)
    if args.checkpoint:
        localizer = TextPromptLocalizer.from_checkpoint(args.checkpoint)
    else:
        net = afloc_default(args.text_model, backbone="resnet18", input_size=None).eval()
        localizer = TextPromptLocalizer(net, **default_inference_settings(net).to_dict())
    net = localizer.network

    # 3. localize: one call per image, all prompts at once; results in the image's own geometry
    item = items[0]
    image = localizer.preprocess.loader(item["image"])  # decoded once, for the heatmaps and the overlay
    out = localizer([image], [item["prompt"], item["prompt_location_free"]], return_boxes=True)
    print("heatmaps", tuple(out["heatmaps"].shape), "best box", out["boxes"][0][0][:1])
    overlay = save_overlay(os.path.join(args.out, "overlay.png"), image,
                           out["heatmaps"][0, 0], title=item["prompt"], boxes=out["boxes"][0][0][:3],
                           truth_boxes=item["boxes"])

    # 4. the MS-CXR protocol, beside the image-shuffled control
    metrics = evaluate_localization(net, items, sigma=localizer.sigma, frame_size=localizer.image_size, n_bootstrap=50)
    print(format_table(metrics))
    return {"overlay": overlay, "metrics": metrics}


if __name__ == "__main__":
    main()
