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
Synthetic fundus-like photographs (grayscale, green-channel look) with reports and ground truth: the worked example
for fine-tuning AFLoc on a new modality offline.

Anatomy varies per case: a circular field of view, an optic disc (left or right, as in right and left eyes) with
vessels radiating from it, a darker macula. Findings: haemorrhages (dark blots), hard exudates (bright clustered
dots) and drusen (faint pale spots), each in a named region ("superior temporal", "inferior nasal", "macular", ...).
The written files use the same formats as the chest data set: an image–text CSV for
:func:`monai_afloc.data.image_text_datalist` and an MS-CXR-like COCO JSON for
:func:`monai_afloc.apps.evaluation.read_synthetic_annotations`.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["FUNDUS_FINDINGS", "SyntheticFundusGenerator", "write_fundus_dataset"]

FUNDUS_FINDINGS = ("Haemorrhage", "Exudate", "Drusen")
_PHRASES = {"Haemorrhage": "retinal haemorrhages", "Exudate": "hard exudates", "Drusen": "drusen"}
_REGIONS = ("superior temporal", "inferior temporal", "superior nasal", "inferior nasal", "macular")


class SyntheticFundusGenerator:
    """
    Seeded fundus-like images: ``generate_case(index)`` is deterministic per ``(seed, index)``.

    Args:
        image_size: side of the square image (>= 64).
        seed: generator seed.
        normal_fraction: fraction of cases without findings.
    """

    def __init__(self, image_size: int = 192, seed: int = 0, normal_fraction: float = 0.2) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 64:
            raise ValueError(f"image_size must be an int >= 64, got {image_size!r}.")
        if not 0.0 <= float(normal_fraction) <= 1.0:
            raise ValueError(f"normal_fraction must be in [0, 1], got {normal_fraction!r}.")
        self.image_size, self.seed, self.normal_fraction = image_size, int(seed), float(normal_fraction)

    def _region_centre(self, region: str, disc_x: float, rng: np.random.Generator) -> tuple[float, float]:
        """A point (row, col) in units of the image side for a named region; nasal is the disc's side."""
        if region == "macular":
            return 0.5 + rng.uniform(-0.05, 0.05), 1.0 - disc_x + (0.08 if disc_x > 0.5 else -0.08)
        nasal_side = 1.0 if disc_x > 0.5 else -1.0
        dx = 0.22 * (nasal_side if "nasal" in region else -nasal_side)
        dy = -0.2 if "superior" in region else 0.2
        return 0.5 + dy + rng.uniform(-0.06, 0.06), 0.5 + dx + rng.uniform(-0.06, 0.06)

    def generate_case(self, index: int) -> dict[str, Any]:
        """``image`` (uint8 [S, S]), ``report``, ``findings`` (name, box, mask, phrase, phrase_location_free)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"index must be a non-negative int, got {index!r}.")
        rng = np.random.default_rng([self.seed, int(index)])
        s = self.image_size
        yy, xx = np.mgrid[0:s, 0:s] / float(s)
        radius = rng.uniform(0.44, 0.49)
        field = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 < radius**2
        img = 0.45 + 0.03 * np.cos(3 * xx + rng.uniform(0, 6))  # uneven illumination
        disc_x = rng.choice([0.28, 0.72]) + rng.uniform(-0.04, 0.04)
        disc_y = 0.5 + rng.uniform(-0.06, 0.06)
        disc_r = rng.uniform(0.06, 0.085)
        d_disc = np.sqrt((yy - disc_y) ** 2 + (xx - disc_x) ** 2)
        img = img + 0.35 * np.exp(-((d_disc / disc_r) ** 4))  # bright disc
        mac_x = 1.0 - disc_x + (0.08 if disc_x > 0.5 else -0.08)
        img = img - 0.12 * np.exp(-(((yy - 0.5) ** 2 + (xx - mac_x) ** 2) / 0.01))  # darker macula
        angle = np.arctan2(yy - disc_y, xx - disc_x)
        for a0 in rng.uniform(-np.pi, np.pi, size=8):  # vessels radiating from the disc
            curve = a0 + 0.6 * np.sin(d_disc * rng.uniform(4, 8))
            img = img - 0.12 * np.exp(-((np.angle(np.exp(1j * (angle - curve))) * d_disc / 0.006) ** 2)) * (d_disc > disc_r)
        findings = []
        names = [] if rng.random() < self.normal_fraction else list(
            rng.choice(FUNDUS_FINDINGS, size=int(rng.integers(1, 3)), replace=False)
        )
        for name in names:
            region = str(rng.choice(_REGIONS))
            cy, cx = self._region_centre(region, disc_x, rng)
            mask = np.zeros((s, s), dtype=bool)
            n_spots = {"Haemorrhage": 3, "Exudate": 7, "Drusen": 6}[name]
            for _ in range(n_spots):
                py, px = cy + rng.normal(0, 0.035), cx + rng.normal(0, 0.035)
                r = {"Haemorrhage": 0.025, "Exudate": 0.011, "Drusen": 0.014}[name] * rng.uniform(0.7, 1.3)
                spot = (yy - py) ** 2 + (xx - px) ** 2 < r**2
                img = img + {"Haemorrhage": -0.22, "Exudate": 0.3, "Drusen": 0.14}[name] * spot
                mask |= spot
            mask &= field
            if not mask.any():
                continue
            rows, cols = np.nonzero(mask)
            box = [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]
            phrase = f"{_PHRASES[name]} in the {region} region" if region != "macular" else f"macular {_PHRASES[name]}"
            findings.append({"name": name, "mask": mask, "box": box, "phrase": phrase,
                             "phrase_location_free": _PHRASES[name], "region": region})
        img = img + rng.normal(0, 0.02, size=(s, s))
        img = np.where(field, img, 0.0)
        image = np.clip(img * 255, 0, 255).astype(np.uint8)
        sentences = [f"There are {f['phrase']}." for f in findings]
        absent = [n for n in FUNDUS_FINDINGS if n not in {f["name"] for f in findings}]
        sentences += [f"No {_PHRASES[n]}." for n in absent if rng.random() < 0.5]
        sentences.append("The optic disc is well defined.")
        impression = "Normal fundus." if not findings else "Findings as described."
        report = "FINDINGS: " + " ".join(sentences) + " IMPRESSION: " + impression
        labels = {n: int(any(f["name"] == n for f in findings)) for n in FUNDUS_FINDINGS}
        return {"image": image, "report": report, "findings": findings, "labels": labels}


def write_fundus_dataset(
    out_dir: str, n_train: int = 200, n_val: int = 20, n_test: int = 40, image_size: int = 192, seed: int = 0
) -> dict[str, str]:
    """
    Write ``images/*.png``, ``fundus-pairs.csv`` (columns image, report, split; for ``image_text_datalist``) and
    ``fundus-annotations.json`` (COCO, test cases with findings; ``label_text``, ``label_text_location_free``,
    ``mask_path`` per annotation). Test cases use indices after the training ones, so they never overlap.
    """
    for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(v, int) or v < (0 if name == "n_val" else 1):
            raise ValueError(f"{name} must be a positive int, got {v!r}.")
    gen = SyntheticFundusGenerator(image_size=image_size, seed=seed)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "masks"), exist_ok=True)
    csv_path = os.path.join(out_dir, "fundus-pairs.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "report", "split"])
        for i in range(n_train + n_val):
            case = gen.generate_case(i)
            rel = os.path.join("images", f"fundus_{i:06d}.png")
            Image.fromarray(case["image"]).save(os.path.join(out_dir, rel))
            writer.writerow([rel, case["report"], "train" if i < n_train else "validate"])
    images, annotations = [], []
    categories = [{"id": k + 1, "name": n, "supercategory": "fundus"} for k, n in enumerate(FUNDUS_FINDINGS)]
    cat_id = {c["name"]: c["id"] for c in categories}
    index = n_train + n_val
    while len(images) < n_test:
        case = gen.generate_case(index)
        if case["findings"]:
            rel = os.path.join("images", f"fundus_{index:06d}.png")
            Image.fromarray(case["image"]).save(os.path.join(out_dir, rel))
            image_id = len(images)
            images.append({"id": image_id, "file_name": os.path.basename(rel), "path": rel,
                           "width": image_size, "height": image_size, "report": case["report"]})
            for f in case["findings"]:
                mask_rel = os.path.join("masks", f"fundus_{index:06d}_{f['name'].lower()}.png")
                Image.fromarray(f["mask"].astype(np.uint8) * 255).save(os.path.join(out_dir, mask_rel))
                annotations.append({"id": len(annotations), "image_id": image_id, "category_id": cat_id[f["name"]],
                                    "bbox": f["box"], "area": f["box"][2] * f["box"][3], "iscrowd": 0,
                                    "label_text": f["phrase"], "label_text_location_free": f["phrase_location_free"],
                                    "mask_path": mask_rel})
        index += 1
    json_path = os.path.join(out_dir, "fundus-annotations.json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return {"root": out_dir, "pairs_csv": csv_path, "annotated_json": json_path}
