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

"""Tests of LoadGrayscaleImage: orientation on non-square files, PNG/JPG/DICOM/NIfTI intensities, errors."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
import torch
from monai.data import MetaTensor
from parameterized import parameterized

from monai_afloc.transforms.image import LoadGrayscaleImage, scale_by_max_to_uint8
from monai_afloc.utils.dicom import save_dicom
from tests.helpers import SkipIfNoModule

__all__ = ["write_dicom", "square_image"]

PORTRAIT = (40, 24)
LANDSCAPE = (24, 40)
SQUARE_AT = (5, 13)  # (row, col) of the bright square's top-left corner
SQUARE_SIDE = 6


def square_image(shape: tuple[int, int], low: int, high: int, dtype=np.uint8) -> np.ndarray:
    """A ``low`` background with a ``high`` square at rows/cols ``SQUARE_AT .. + SQUARE_SIDE``."""
    arr = np.full(shape, low, dtype=dtype)
    r, c = SQUARE_AT
    arr[r : r + SQUARE_SIDE, c : c + SQUARE_SIDE] = high
    return arr


def write_dicom(
    path: str,
    arr: np.ndarray,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
    voi_lut: np.ndarray | None = None,
    bits_stored: int = 12,
    signed: bool = False,
) -> str:
    """Write a 16-bit single-frame DX DICOM file (row-major ``arr`` is rows x columns) with pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = int(arr.shape[0]), int(arr.shape[1])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelSpacing = [0.139, 0.143]
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        item = Dataset()
        item.LUTDescriptor = [len(voi_lut), 0, bits_stored]
        item.add_new(0x00283006, "US", [int(v) for v in voi_lut])  # LUTData
        ds.VOILUTSequence = [item]
    ds.PixelData = arr.astype(np.int16 if signed else np.uint16).tobytes()
    return save_dicom(ds, path)


def linear_window(x: np.ndarray, center: float, width: float, y_max: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 linear VOI window, output range [0, y_max] (written here independently)."""
    x = x.astype(np.float64)
    lo, hi = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    mid = ((x - (center - 0.5)) / (width - 1) + 0.5) * y_max
    return np.where(x <= lo, 0.0, np.where(x > hi, y_max, mid))


class _TmpDir(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def assert_square(self, img: torch.Tensor, shape: tuple[int, int]):
        """The bright square (values > mid-range) sits exactly at SQUARE_AT in an image of ``shape``."""
        self.assertIsInstance(img, MetaTensor)
        self.assertEqual(tuple(img.shape), (1, *shape))
        self.assertEqual(img.dtype, torch.float32)
        rows, cols = torch.nonzero(img[0] > 127.5, as_tuple=True)
        self.assertEqual((int(rows.min()), int(cols.min())), SQUARE_AT)
        self.assertEqual((int(rows.max()), int(cols.max())), (SQUARE_AT[0] + 5, SQUARE_AT[1] + 5))
        self.assertEqual(tuple(img.meta["afloc_original_size"]), shape)


@SkipIfNoModule("PIL")
class TestLoadPil(_TmpDir):
    @parameterized.expand([("portrait", PORTRAIT), ("landscape", LANDSCAPE)])
    def test_png8_orientation_exact(self, _, shape):
        from PIL import Image

        arr = square_image(shape, 10, 240)
        arr[0, -1] = 77  # top-right marker
        Image.fromarray(arr).save(self.path("a.png"))
        img = LoadGrayscaleImage()(self.path("a.png"))
        self.assert_square(img, shape)
        np.testing.assert_array_equal(img[0].numpy(), arr.astype(np.float32))
        self.assertEqual(img.meta["afloc_source_format"], "pil")

    @parameterized.expand([("portrait", PORTRAIT), ("landscape", LANDSCAPE)])
    def test_png16_rescaled_by_max(self, _, shape):
        from PIL import Image

        arr = square_image(shape, 1000, 4000, dtype=np.uint16)
        Image.fromarray(arr).save(self.path("a16.png"))
        self.assertEqual(Image.open(self.path("a16.png")).mode[:3], "I;1")  # really a 16-bit file
        img = LoadGrayscaleImage()(self.path("a16.png"))
        self.assert_square(img, shape)
        # 1000 * 255 / 4000 = 63.75 -> 64 ; 4000 -> 255
        self.assertEqual(set(torch.unique(img).tolist()), {64.0, 255.0})

    @parameterized.expand([("rgb", "RGB"), ("rgba", "RGBA")])
    def test_color_to_luminance(self, _, mode):
        from PIL import Image

        gray = square_image(PORTRAIT, 0, 255)
        rgb = np.stack([gray] * 3, -1)
        rgb[-1, 0] = (255, 0, 0)  # colour probes on the last row
        rgb[-1, 1] = (0, 255, 0)
        rgb[-1, 2] = (10, 20, 200)
        if mode == "RGBA":
            rgb = np.concatenate([rgb, np.full((*PORTRAIT, 1), 7, np.uint8)], -1)  # alpha is ignored
        Image.fromarray(rgb, mode=mode).save(self.path("c.png"))
        img = LoadGrayscaleImage()(self.path("c.png"))
        self.assert_square(torch.cat([img[:, :-1], torch.zeros_like(img[:, -1:])], 1), PORTRAIT)
        # ITU-R 601-2 luma with Pillow's fixed point: (19595 R + 38470 G + 7471 B + 32768) >> 16
        probes = ((255, 0, 0), (0, 255, 0), (10, 20, 200))
        expected = [(19595 * r + 38470 * g + 7471 * b + 32768) >> 16 for r, g, b in probes]
        self.assertEqual(img[0, -1, :3].tolist(), [float(v) for v in expected])

    @parameterized.expand([("portrait", PORTRAIT), ("landscape", LANDSCAPE)])
    def test_jpeg_orientation(self, _, shape):
        from PIL import Image

        Image.fromarray(square_image(shape, 0, 255)).save(self.path("a.jpg"), quality=100)
        img = LoadGrayscaleImage()(self.path("a.jpg"))
        self.assert_square(img, shape)

    def test_corrupt_png(self):
        with open(self.path("bad.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
        with self.assertRaisesRegex(ValueError, "bad.png"):
            LoadGrayscaleImage()(self.path("bad.png"))

    def test_truncated_png(self):
        from PIL import Image

        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48), dtype=np.uint8)).save(self.path("t.png"))
        with open(self.path("t.png"), "rb") as f:
            data = f.read()
        with open(self.path("t.png"), "wb") as f:
            f.write(data[: len(data) // 2])
        with self.assertRaisesRegex(ValueError, "t.png"):
            LoadGrayscaleImage()(self.path("t.png"))


class TestLoadDicom(_TmpDir):
    @parameterized.expand(
        [
            ("m2_portrait", "MONOCHROME2", PORTRAIT),
            ("m2_landscape", "MONOCHROME2", LANDSCAPE),
            ("m1_portrait", "MONOCHROME1", PORTRAIT),
            ("m1_landscape", "MONOCHROME1", LANDSCAPE),
        ]
    )
    def test_raw(self, _, photometric, shape):
        arr = square_image(shape, 1000, 4000, dtype=np.uint16)
        path = write_dicom(self.path("a.dcm"), arr, photometric)
        img = LoadGrayscaleImage()(path)
        expected = np.where(arr == 4000, 255.0, 64.0)  # 1000 * 255 / 4000 = 63.75 -> 64
        if photometric == "MONOCHROME1":
            expected = 255.0 - expected
        np.testing.assert_array_equal(img[0].numpy(), expected)
        self.assert_square(255.0 - img if photometric == "MONOCHROME1" else img, shape)
        self.assertEqual(img.meta["afloc_photometric_interpretation"], photometric)
        self.assertFalse(img.meta["afloc_voi_lut_applied"])
        self.assertEqual(img.meta["afloc_pixel_spacing"], (0.139, 0.143))

    @parameterized.expand([("m2", "MONOCHROME2"), ("m1", "MONOCHROME1")])
    def test_window(self, _, photometric):
        arr = square_image(LANDSCAPE, 100, 3000, dtype=np.uint16)
        arr[-1, :] = 1000  # inside the window
        path = write_dicom(self.path("w.dcm"), arr, photometric, window=(1000.0, 1001.0))
        windowed = linear_window(arr, 1000.0, 1001.0, 4095.0)
        expected = np.round(windowed * 255.0 / windowed.max())
        if photometric == "MONOCHROME1":
            expected = 255.0 - expected
        img = LoadGrayscaleImage()(path)
        self.assertTrue(img.meta["afloc_voi_lut_applied"])
        np.testing.assert_array_equal(img[0].numpy(), expected)
        if photometric == "MONOCHROME2":  # below, inside and above the window
            self.assertEqual(np.unique(expected).tolist(), [0.0, 128.0, 255.0])
        # switched off: raw values, rescaled by max
        raw = LoadGrayscaleImage(apply_voi_lut=False)(path)
        self.assertFalse(raw.meta["afloc_voi_lut_applied"])
        expected_raw = np.round(arr * 255.0 / 3000.0)
        if photometric == "MONOCHROME1":
            expected_raw = 255.0 - expected_raw
        np.testing.assert_array_equal(raw[0].numpy(), expected_raw)

    def test_voi_lut_sequence(self):
        arr = square_image(PORTRAIT, 0, 4095, dtype=np.uint16)
        arr[0, 0] = 1000
        lut = 4095 - np.arange(4096)  # an inverting LUT
        path = write_dicom(self.path("l.dcm"), arr, voi_lut=lut)
        img = LoadGrayscaleImage()(path)
        self.assertTrue(img.meta["afloc_voi_lut_applied"])
        mapped = 4095.0 - arr
        np.testing.assert_array_equal(img[0].numpy(), np.round(mapped * 255.0 / mapped.max()))

    def test_suffixless_dicom_detected(self):
        path = write_dicom(self.path("no_suffix"), square_image(PORTRAIT, 0, 4095, dtype=np.uint16))
        img = LoadGrayscaleImage()(path)
        self.assertEqual(img.meta["afloc_source_format"], "dicom")
        self.assert_square(img, PORTRAIT)

    def test_corrupt_dicom(self):
        with open(self.path("bad.dcm"), "wb") as f:
            f.write(np.random.default_rng(0).bytes(300))
        with self.assertRaisesRegex(ValueError, "bad.dcm"):
            LoadGrayscaleImage()(self.path("bad.dcm"))


class TestLoadNifti(_TmpDir):
    @parameterized.expand([("hw", PORTRAIT, False), ("hw1", LANDSCAPE, True)])
    def test_2d(self, _, shape, trailing_one):
        import nibabel as nib

        arr = square_image(shape, 3, 250)
        nib.save(nib.Nifti1Image(arr[..., None] if trailing_one else arr, np.eye(4)), self.path("a.nii.gz"))
        img = LoadGrayscaleImage()(self.path("a.nii.gz"))
        self.assert_square(img, shape)
        np.testing.assert_array_equal(img[0].numpy(), arr.astype(np.float32))

    def test_uint16_rescaled(self):
        import nibabel as nib

        arr = square_image(PORTRAIT, 1000, 4000, dtype=np.uint16)
        nib.save(nib.Nifti1Image(arr, np.eye(4)), self.path("a.nii"))
        img = LoadGrayscaleImage()(self.path("a.nii"))
        self.assertEqual(set(torch.unique(img).tolist()), {64.0, 255.0})

    def test_3d_rejected(self):
        import nibabel as nib

        nib.save(nib.Nifti1Image(np.zeros((8, 6, 3), np.uint8), np.eye(4)), self.path("v.nii.gz"))
        with self.assertRaisesRegex(ValueError, r"expected a 2D image, got shape \(8, 6, 3\)"):
            LoadGrayscaleImage()(self.path("v.nii.gz"))

    def test_corrupt_nifti(self):
        with open(self.path("bad.nii"), "wb") as f:
            f.write(b"\x00" * 100)
        with self.assertRaisesRegex(ValueError, "bad.nii"):
            LoadGrayscaleImage()(self.path("bad.nii"))


class TestLoadErrors(_TmpDir):
    @parameterized.expand(
        [("png", "missing.png"), ("dcm", "missing.dcm"), ("nii", "missing.nii.gz"), ("none", "missing")]
    )
    def test_missing(self, _, name):
        with self.assertRaisesRegex(FileNotFoundError, name):
            LoadGrayscaleImage()(self.path(name))

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            LoadGrayscaleImage(image_format="jpeg2000")
        with self.assertRaises(TypeError):
            LoadGrayscaleImage(apply_voi_lut="yes")  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            LoadGrayscaleImage()(123)  # type: ignore[arg-type]


class TestScaleByMax(unittest.TestCase):
    def test_values(self):
        out = scale_by_max_to_uint8(np.array([[0, 1000, 4095]], dtype=np.uint16))
        self.assertEqual(out.dtype, np.float32)
        self.assertEqual(out.tolist(), [[0.0, 62.0, 255.0]])
        np.testing.assert_array_equal(scale_by_max_to_uint8(np.zeros((2, 3), np.uint16)), np.zeros((2, 3)))

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            scale_by_max_to_uint8(np.array([1.0, np.nan]))
        with self.assertRaises(ValueError):
            scale_by_max_to_uint8(np.array([]))


@SkipIfNoModule("cv2")
class TestReferenceParity(_TmpDir):
    """Against the release's own readers (``cv2.imread(p, 0)``; pydicom + ``cv2.convertScaleAbs``)."""

    def test_png_and_jpeg_like_cv2(self):
        import cv2
        from PIL import Image

        arr = np.random.default_rng(0).integers(0, 256, LANDSCAPE, dtype=np.uint8)
        for name in ("r.png", "r.jpg"):
            Image.fromarray(arr).save(self.path(name))
            ours = LoadGrayscaleImage()(self.path(name))[0].numpy()
            np.testing.assert_array_equal(ours, cv2.imread(self.path(name), 0))

    @parameterized.expand([("m2", "MONOCHROME2"), ("m1", "MONOCHROME1")])
    def test_dicom_like_reference(self, _, photometric):
        import cv2
        import pydicom

        arr = np.random.default_rng(1).integers(0, 4096, PORTRAIT).astype(np.uint16)
        path = write_dicom(self.path("r.dcm"), arr, photometric)
        x = pydicom.dcmread(path).pixel_array
        x = cv2.convertScaleAbs(x, alpha=(255.0 / x.max()))
        if photometric == "MONOCHROME1":
            x = cv2.bitwise_not(x)
        np.testing.assert_array_equal(LoadGrayscaleImage()(path)[0].numpy(), x)

    def test_scale_by_max_like_convert_scale_abs(self):
        import cv2

        rng = np.random.default_rng(2)
        for dtype, lo, hi in ((np.uint16, 0, 65536), (np.int16, -500, 4096), (np.float64, -10.0, 3000.0)):
            x = rng.uniform(lo, hi, (50, 70)) if dtype == np.float64 else rng.integers(lo, hi, (50, 70))
            x = x.astype(dtype)
            np.testing.assert_array_equal(scale_by_max_to_uint8(x), cv2.convertScaleAbs(x, alpha=255.0 / x.max()))
        ties = np.arange(511, dtype=np.uint16).reshape(7, 73)  # alpha = 0.5: every odd value is a tie
        np.testing.assert_array_equal(scale_by_max_to_uint8(ties), cv2.convertScaleAbs(ties, alpha=255.0 / 510))


if __name__ == "__main__":
    unittest.main()
