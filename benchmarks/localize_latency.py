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
Localization latency on CPU (issue "Text-prompted localization ..."): one 1024×1024 DICOM, 14 prompts,
reference-size networks (ResNet-50 at 299 + a BERT-base-sized text model with random weights, WordPiece vocabulary
of all-MiniLM-L6-v2 when installed, else a generated one).

(a) "reference": prompt by prompt, as the AFLoc release does: for every prompt the image is read, preprocessed and
    encoded again, the prompt is encoded, the similarity smoothed with scipy and upsampled.
(b) "localizer": :class:`TextPromptLocalizer`: the image is encoded once for all prompts; prompt vectors are cached
    (cold = first image, prompts encoded; warm = later images, cache hits).

Usage: ``python benchmarks/localize_latency.py [--threads 2] [--repeats 3] [--small]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from monai_afloc.inferers import DEFAULT_FINDING_PROMPTS, TextPromptLocalizer, clean_prompt  # noqa: E402
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder  # noqa: E402
from monai_afloc.transforms.image.array import AFLocImagePreprocess  # noqa: E402
from monai_afloc.transforms.image.geometry import GEOMETRY_META_KEY, PreprocessGeometry, frame_to_original  # noqa: E402


def build_network(small: bool) -> AFLoc:
    from transformers import BertConfig, BertModel, BertTokenizer

    try:
        from monai_afloc.networks.nets import minilm_model_path

        tokenizer = BertTokenizer.from_pretrained(minilm_model_path())
    except ImportError:
        from tests.helpers import make_tiny_tokenizer

        tokenizer = make_tiny_tokenizer()
    width, layers = (128, 3) if small else (768, 12)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=max(2, width // 64),
        intermediate_size=4 * width,
    )
    text = AFLocTextEncoder(model=BertModel(config), tokenizer=tokenizer)
    image = AFLocImageEncoder("resnet18" if small else "resnet50", embed_dim=width, input_size=None if small else 299)
    return AFLoc(image, text).eval()


def write_dicom(path: str, size: int = 1024) -> str:
    from tests.helpers import write_dx_dicom

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    img = 1500 + 800 * np.exp(-(((yy - 600) / 180.0) ** 2 + ((xx - 300) / 120.0) ** 2)) + rng.normal(0, 40, (size, size))
    return write_dx_dicom(path, np.clip(img, 0, 4095).astype(np.uint16))


def reference_prompt_by_prompt(net: AFLoc, path: str, prompts: list[str]) -> list[np.ndarray]:
    """The release's loop: everything recomputed for every prompt; smoothing with scipy on numpy."""
    preprocess = AFLocImagePreprocess()
    maps = []
    with torch.no_grad():
        for prompt in prompts:
            frame = preprocess(path)
            geometry = PreprocessGeometry.from_dict(frame.meta[GEOMETRY_META_KEY])
            regions = net.encode_image(frame.as_tensor()[None])["image_sentences"]
            text = net.encode_text(**net.tokenize([clean_prompt(prompt)]))["text_report"]
            sim = torch.einsum("bdhw,kd->bkhw", regions, text)[0, 0].numpy()
            sim = gaussian_filter(sim, 1.5, mode="reflect", truncate=4.0)
            up = F.interpolate(torch.from_numpy(sim)[None, None], size=(224, 224), mode="bilinear", align_corners=False)
            up = up[0, 0]
            up = 2 * (up - up.min()) / (up.max() - up.min()) - 1
            maps.append(frame_to_original(up[None], geometry)[0].numpy())
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny networks (smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prompts = [p["positive"][0] for p in DEFAULT_FINDING_PROMPTS.values()][:14]
    net = build_network(args.small)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_dicom(os.path.join(tmp, "cxr.dcm"))
        reference_prompt_by_prompt(net, path, prompts[:1])  # warm-up
        ref_times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ref_maps = reference_prompt_by_prompt(net, path, prompts)
            ref_times.append(time.perf_counter() - t0)
        loc = TextPromptLocalizer(net)
        t0 = time.perf_counter()
        out = loc(path, prompts)
        cold = time.perf_counter() - t0
        warm_times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = loc(path, prompts)
            warm_times.append(time.perf_counter() - t0)
    diff = max(float(np.abs(out["heatmaps"][0, k].numpy() - ref_maps[k]).max()) for k in range(len(prompts)))
    ref, warm = statistics.median(ref_times), statistics.median(warm_times)
    print(f"networks: {'tiny' if args.small else 'ResNet-50@299 + BERT-base-size text'}; image 1024x1024 DICOM; "
          f"{len(prompts)} prompts; torch threads {args.threads}")
    print(f"(a) reference, prompt by prompt: {ref:.3f} s/image (median of {args.repeats})")
    print(f"(b) localizer, cold (prompts encoded): {cold:.3f} s/image")
    print(f"(b) localizer, warm (prompt cache):   {warm:.3f} s/image (median of {args.repeats})")
    print(f"speed-up warm: {ref / warm:.1f}x; cold: {ref / cold:.1f}x; max |heatmap difference| {diff:.2e}")


if __name__ == "__main__":
    main()
