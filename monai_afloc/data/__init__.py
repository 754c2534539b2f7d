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
Readers of real data sets in their published formats, returning MONAI data dicts (lists of dicts for
``monai.data.Dataset`` / ``CacheDataset``), plus the run-length codes their masks use.
"""

from __future__ import annotations

from monai_afloc.data.classification import CHESTXRAY14_FINDINGS, chestxray14_datalist, chexpert_datalist
from monai_afloc.data.generic import annotated_datalist, image_text_datalist
from monai_afloc.data.localization import (
    chestxray8_bbox_datalist,
    chexlocalize_datalist,
    chexlocalize_image_path,
    covid_rural_datalist,
    ms_cxr_datalist,
    rsna_pneumonia_datalist,
    siim_pneumothorax_datalist,
)
from monai_afloc.data.mimic import (
    CHEXPERT_FINDINGS,
    REPORT_SECTIONS,
    UNCERTAIN_POLICIES,
    mimic_cxr_datalist,
    parse_report_sections,
    select_report_text,
)
from monai_afloc.data.rle import (
    DecodeRLEMaskD,
    DecodeRLEMaskd,
    DecodeRLEMaskDict,
    coco_rle_decode,
    coco_rle_encode,
    decode_mask,
    rle_decode_relative,
    rle_encode_relative,
)
from monai_afloc.data.utils import DEFAULT_PROMPT_TEMPLATE, default_prompt, resolve_table_path

__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "default_prompt",
    "resolve_table_path",
    "CHEXPERT_FINDINGS",
    "CHESTXRAY14_FINDINGS",
    "REPORT_SECTIONS",
    "UNCERTAIN_POLICIES",
    "parse_report_sections",
    "select_report_text",
    "mimic_cxr_datalist",
    "ms_cxr_datalist",
    "rsna_pneumonia_datalist",
    "siim_pneumothorax_datalist",
    "chexlocalize_datalist",
    "chexlocalize_image_path",
    "chestxray8_bbox_datalist",
    "covid_rural_datalist",
    "chexpert_datalist",
    "chestxray14_datalist",
    "image_text_datalist",
    "annotated_datalist",
    "rle_decode_relative",
    "rle_encode_relative",
    "coco_rle_decode",
    "coco_rle_encode",
    "decode_mask",
    "DecodeRLEMaskd",
    "DecodeRLEMaskD",
    "DecodeRLEMaskDict",
]
