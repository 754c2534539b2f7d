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
Synthetic chest X-ray-like data: a seeded image + report + ground-truth generator and writers for a
MIMIC-CXR-JPG-like pretraining split, an MS-CXR-like annotated (COCO) split and DX DICOM files.

The data are our embedded default for demos, benchmarks and end-to-end tests: nothing is downloaded.
Laterality is always the patient's side; the patient's left lies on the image's right (radiological convention).

Example::

    from monai_afloc.apps.synthetic import SyntheticCXRGenerator, make_synthetic_dataset

    case = SyntheticCXRGenerator(image_size=256, seed=0).generate_case(7)
    case["image"].shape, case["report"], [f["phrase"] for f in case["findings"]]
    paths = make_synthetic_dataset("/tmp/synth", n_train=64, n_val=16, n_test_annotated=16)
"""

from __future__ import annotations

from monai_afloc.apps.synthetic.generator import SYNTHETIC_FINDINGS, SyntheticCXRGenerator
from monai_afloc.apps.synthetic.report import SYNTHETIC_LOCATION_WORDS
from monai_afloc.apps.synthetic.writers import (
    ANNOTATED_START_INDEX,
    ANNOTATED_VAL_START_INDEX,
    PRETRAINING_START_INDEX,
    make_synthetic_dataset,
    write_annotated_split,
    write_dicom,
    write_pretraining_split,
)

__all__ = [
    "SYNTHETIC_FINDINGS",
    "SYNTHETIC_LOCATION_WORDS",
    "SyntheticCXRGenerator",
    "PRETRAINING_START_INDEX",
    "ANNOTATED_START_INDEX",
    "ANNOTATED_VAL_START_INDEX",
    "write_pretraining_split",
    "write_annotated_split",
    "write_dicom",
    "make_synthetic_dataset",
]

from .fundus import FUNDUS_FINDINGS, SyntheticFundusGenerator, write_fundus_dataset  # noqa: E402

__all__ += ["FUNDUS_FINDINGS", "SyntheticFundusGenerator", "write_fundus_dataset"]
