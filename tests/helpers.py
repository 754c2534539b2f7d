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
"""Shared test helpers: tiny offline text models and skip decorators (never imported by the package)."""

from __future__ import annotations

import importlib.util
import os
import unittest

import torch

from monai_afloc.utils.dicom import save_dicom

__all__ = [
    "TINY_VOCAB",
    "make_tiny_tokenizer",
    "make_tiny_bert",
    "SkipIfNoModule",
    "write_dx_dicom",
    "BrightnessAFLoc",
    "load_benchmark",
    "torchxrayvision_data_dir",
    "SIZED_IMAGE_SIZE",
    "SIZED_GRID",
    "write_sized_checkpoint",
    "read_heatmaps_nifti",
]

_BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")


def load_benchmark(name: str):
    """The module of the script ``benchmarks/<name>.py`` (the benchmarks folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", os.path.join(_BENCHMARKS, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torchxrayvision_data_dir() -> str | None:
    """The ``data`` folder of an installed ``torchxrayvision`` wheel (real reports and tables), found without
    importing the package (that would import torchvision); None when it is not installed."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return folder if os.path.isdir(folder) else None

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_PUNCT = [".", ",", ":", ";", "-", "/", "(", ")"]
_WORDS = (
    "a an the is are there no not without with and or of in on at to as be seen small large mild moderate severe "
    "left right bilateral upper middle lower lobe lung lungs zone base basal apical apex lateral heart size normal "
    "pleural effusion effusions opacity opacities consolidation nodule edema atelectasis "
    "enlarged clear stable unchanged findings impression suggesting new focal acute "
    "pulmonary vascular congestion silhouette within limits chest radiograph"
).split()
_PIECES = ["pneumo", "##thorax", "cardio", "##me", "##gal", "##y", "##s", "##ing", "##ed", "peri", "##hilar", "hazi", "##ness"]
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]

#: token -> id, the WordPiece vocabulary used by the tests' tiny BERT
TINY_VOCAB: dict[str, int] = {}
for _t in _SPECIAL + _PUNCT + _WORDS + _PIECES + _CHARS:
    TINY_VOCAB.setdefault(_t, len(TINY_VOCAB))


def make_tiny_tokenizer():
    """A WordPiece ``BertTokenizer`` built in memory (transformers 5 ignores ``vocab_file=``; pass ``vocab=``)."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab=dict(TINY_VOCAB), do_lower_case=True)


def make_tiny_bert(path: str, hidden_size: int = 32, num_hidden_layers: int = 4, seed: int = 0) -> str:
    """Write a random tiny BERT + its tokenizer to ``path`` (a folder ``AutoModel``/``AutoTokenizer`` load offline)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    model = BertModel(config).eval()
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    make_tiny_tokenizer().save_pretrained(path)
    return path


class SkipIfNoModule:
    """Decorator: skip a test (class) when ``module_name`` cannot be imported."""

    def __init__(self, module_name: str):
        self.module_name = module_name
        self.missing = importlib.util.find_spec(module_name) is None

    def __call__(self, obj):
        return unittest.skipIf(self.missing, f"optional module not present: {self.module_name}")(obj)


def write_dx_dicom(path: str, pixels, photometric: str = "MONOCHROME2", bits: int = 16, window=None) -> str:
    """Write a single-frame DX DICOM of ``pixels`` ([rows, cols] integers) with pydicom (2.4 and 3.x)."""
    import numpy as np
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = np.asarray(pixels).astype(np.uint16 if bits == 16 else np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "Test^Synthetic", "TEST001"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    ds.PixelSpacing = ds.ImagerPixelSpacing = [0.139, 0.139]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = arr.tobytes()
    return save_dicom(ds, path)


class _BrightnessImageEncoder(torch.nn.Module):
    """Region embedding = mean intensity of each cell of a ``grid``×``grid`` partition (D = 1)."""

    embed_dim = 1

    def __init__(self, grid: int = 19):
        super().__init__()
        self.grid = grid
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, image):
        cells = torch.nn.functional.adaptive_avg_pool2d(image[:, :1], self.grid) + 0 * self.dummy
        return {
            "image_words": torch.nn.functional.adaptive_avg_pool2d(image[:, :1], 2 * self.grid),
            "image_sentences": cells,
            "image_report": cells.flatten(1).mean(1, keepdim=True),
        }


class _ConstantTextEncoder(torch.nn.Module):
    """Every prompt embeds to the 1-vector, so a heatmap equals the (smoothed) image brightness."""

    embed_dim = 1

    def __init__(self):
        super().__init__()
        self.tokenizer = make_tiny_tokenizer()
        self.calls = 0

    def forward(self, input_ids, attention_mask, token_type_ids=None, word_ids=None):
        self.calls += 1
        b, t = input_ids.shape
        ones = torch.ones(b, 1)
        return {
            "text_words": torch.ones(b, 1, t),
            "word_lengths": attention_mask.sum(1) - 1,
            "text_sentences": torch.ones(b, 1, t),
            "sentence_lengths": torch.ones(b, dtype=torch.long),
            "text_report": ones,
        }

    def tokenize(self, texts, max_length=None):
        return self.tokenizer(texts, padding="max_length", max_length=max_length or 97, truncation=True, return_tensors="pt")


def BrightnessAFLoc(grid: int = 19):
    """A hand-built AFLoc whose heatmap for any prompt is the image brightness (for geometry tests)."""
    from monai_afloc.networks.nets import AFLoc

    return AFLoc(_BrightnessImageEncoder(grid), _ConstantTextEncoder()).eval()


#: the frame size of :func:`write_sized_checkpoint` (not the default 224) and the ResNet-10 sentence grid there
SIZED_IMAGE_SIZE, SIZED_GRID = 96, 6


def write_sized_checkpoint(root: str, seed: int = 0) -> tuple[str, str, str]:
    """
    A tiny AFLoc (ResNet-10 keeping its input size + tiny BERT) saved as its trainer saves it after training at
    ``SIZED_IMAGE_SIZE`` px (``extra["image_size"]``, what :class:`AFLocModelSaver` records), plus a non-square PNG
    and a DX DICOM of the same pixels. Returns ``(checkpoint, png, dicom)``.
    """
    import numpy as np
    from PIL import Image

    from monai_afloc.checkpoint import save_afloc_checkpoint
    from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder

    torch.manual_seed(seed)
    bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32, seed=seed)
    net = AFLoc(AFLocImageEncoder("resnet10", embed_dim=32, input_size=None), AFLocTextEncoder(bert)).eval()
    ckpt = save_afloc_checkpoint(net, os.path.join(root, "ckpt"), extra={"image_size": SIZED_IMAGE_SIZE, "epoch": 3})
    rng = np.random.default_rng(seed)
    img = (rng.random((120, 80)) * 60 + 30).astype(np.uint8)
    img[20:50, 45:70] = 240
    png = os.path.join(root, "cxr.png")
    Image.fromarray(img).save(png)
    dcm = write_dx_dicom(os.path.join(root, "cxr.dcm"), img.astype(np.uint16) * 16)
    return ckpt, png, dcm


def read_heatmaps_nifti(path: str):
    """``[K, H, W]`` float32 numpy heatmaps of a file written by ``save_heatmaps_nifti``."""
    import nibabel as nib
    import numpy as np

    return np.transpose(np.asarray(nib.load(path).get_fdata(), dtype=np.float32), (2, 1, 0))
