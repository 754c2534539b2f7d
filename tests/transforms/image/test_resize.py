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

"""Tests of resize_inter_area (INTER_AREA emulation), ResizeLongestSidePad and CenterCropFrame."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from monai.data import MetaTensor
from parameterized import parameterized

from monai_afloc.transforms.image import CenterCropFrame, ResizeLongestSidePad, resize_inter_area
from tests.helpers import SkipIfNoModule

__all__ = ["numpy_inter_area"]


def numpy_inter_area(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """
    Straightforward area-average downscale (what OpenCV's INTER_AREA computes for shrinking): output pixel
    ``(i, j)`` is the mean of the input over the box ``[i * sy, (i + 1) * sy) x [j * sx, (j + 1) * sx)`` with
    fractional coverage of the boundary pixels. Loops; float64.
    """
    in_h, in_w = img.shape
    sy, sx = in_h / out_h, in_w / out_w

    def coverage(n_in: int, scale: float, k: int) -> np.ndarray:
        w = np.zeros(n_in)
        lo, hi = k * scale, min((k + 1) * scale, n_in)
        for p in range(math.floor(lo), math.ceil(hi)):
            w[p] = max(0.0, min(p + 1, hi) - max(p, lo))
        return w / w.sum()

    out = np.zeros((out_h, out_w))
    for i in range(out_h):
        wy = coverage(in_h, sy, i)
        for j in range(out_w):
            wx = coverage(in_w, sx, j)
            out[i, j] = wy @ img @ wx
    return out


def reference_resize_shape(h: int, w: int, scale: int) -> tuple[int, int]:
    """The reference's ``desireable_size`` (taller branch when h == w)."""
    size = (h, w)
    if size.index(max(size)) == 0:
        return scale, int(float(w) * float(scale / float(h)))
    return int(float(h) * float(scale / float(w))), scale


class TestResizeInterArea(unittest.TestCase):
    @parameterized.expand(
        [
            ("int2", (48, 32), (24, 16)),
            ("int3", (45, 30), (15, 10)),
            ("int4", (64, 40), (16, 10)),
            ("frac", (50, 37), (22, 16)),
            ("frac_wide", (33, 70), (15, 32)),
            ("mixed_int_frac", (40, 37), (20, 16)),
        ]
    )
    def test_against_numpy_reference(self, _, in_hw, out_hw):
        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, in_hw).astype(np.float64)
        ref = numpy_inter_area(img, *out_hw)
        x = torch.as_tensor(img)[None]
        out_f = resize_inter_area(x, out_hw, reference_uint8=False)
        self.assertEqual(out_f.dtype, torch.float32)
        np.testing.assert_allclose(out_f[0].numpy(), ref, atol=1e-3)
        out_u = resize_inter_area(x, out_hw, reference_uint8=True)[0].numpy()
        away_from_ties = np.abs(ref - np.floor(ref) - 0.5) > 1e-3
        np.testing.assert_array_equal(out_u[away_from_ties], np.round(ref)[away_from_ties])
        self.assertLessEqual(np.abs(out_u - ref).max(), 0.5 + 1e-3)

    def test_tie_rounding_like_opencv(self):
        # 2x2 blocks round half up ((s + 2) >> 2); other integer factors round half to even
        x = torch.tensor([[[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]]])  # block means 0.5 and 1.5
        self.assertEqual(resize_inter_area(x, (1, 2)).tolist(), [[[1.0, 2.0]]])
        y = torch.zeros(1, 4, 8)
        y[0, :2, :4] = 1.0  # 4x4 block mean 0.5 -> 0 (half to even)
        y[0, :2, 4:] = 3.0  # 1.5 -> 2
        self.assertEqual(resize_inter_area(y, (1, 2)).tolist(), [[[0.0, 2.0]]])

    def test_upscale_constant_and_monotone(self):
        x = torch.full((1, 5, 7), 77.0)
        self.assertTrue(bool((resize_inter_area(x, (12, 9)) == 77.0).all()))
        ramp = torch.arange(7.0).repeat(5, 1)[None] * 30
        out = resize_inter_area(ramp, (11, 16))
        self.assertTrue(bool((out[..., 1:] >= out[..., :-1]).all()))
        self.assertEqual((out.min().item(), out.max().item()), (0.0, 180.0))

    def test_batched_leading_dims(self):
        x = torch.randint(0, 256, (2, 3, 30, 41)).float()
        out = resize_inter_area(x, (13, 17))
        self.assertEqual(tuple(out.shape), (2, 3, 13, 17))
        torch.testing.assert_close(out[1, 2], resize_inter_area(x[1, 2], (13, 17)), rtol=0, atol=0)

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            resize_inter_area(np.zeros((4, 4)), (2, 2))  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            resize_inter_area(torch.zeros(4), (2, 2))
        with self.assertRaises(ValueError):
            resize_inter_area(torch.zeros(4, 4), (0, 2))


@SkipIfNoModule("cv2")
class TestOpenCVParity(unittest.TestCase):
    """Bit-exact against cv2.resize(INTER_AREA) on uint8 images: shrink (integer / non-integer), grow, mixed."""

    def test_random_sizes(self):
        import cv2

        rng = np.random.default_rng(1)
        cases = [(448, 300, 224, 150), (672, 450, 224, 150), (896, 600, 224, 150), (500, 333, 224, 149)]
        cases += [(100, 60, 224, 134), (37, 200, 41, 224), (111, 111, 224, 223), (150, 1, 224, 1), (40, 90, 60, 30)]
        for _ in range(40):
            in_h, in_w = (int(v) for v in rng.integers(2, 260, 2))
            out_h, out_w = (int(v) for v in rng.integers(1, 200, 2))
            cases.append((in_h, in_w, out_h, out_w))
        for k, (in_h, in_w, out_h, out_w) in enumerate(cases):
            img = rng.integers(0, 256, (in_h, in_w), dtype=np.uint8)
            if k % 2:
                img = (rng.random((in_h, in_w)) < 0.5).astype(np.uint8) * 255  # tie-prone
            ref = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)
            out = resize_inter_area(torch.from_numpy(img).float(), (out_h, out_w)).numpy()
            np.testing.assert_array_equal(out, ref, err_msg=f"{(in_h, in_w)} -> {(out_h, out_w)}")

    def test_resize_longest_side_pad_like_reference(self):
        import cv2

        def reference(img: np.ndarray, scale: int) -> np.ndarray:
            h, w = reference_resize_shape(*img.shape, scale)
            resized = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            pad_h, pad_w = scale - resized.shape[0], scale - resized.shape[1]
            return np.pad(resized, [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)])

        rng = np.random.default_rng(2)
        for shape in ((300, 251), (251, 300), (230, 230), (111, 111), (60, 200), (1024, 1024), (513, 770)):
            img = rng.integers(0, 256, shape, dtype=np.uint8)
            out = ResizeLongestSidePad(224)(torch.from_numpy(img)[None])
            np.testing.assert_array_equal(out[0].numpy(), reference(img, 224), err_msg=str(shape))


class TestResizeLongestSidePad(unittest.TestCase):
    @parameterized.expand(
        [
            ("portrait", (300, 101), (224, 75), (0, 74)),
            ("landscape", (101, 300), (75, 224), (74, 0)),
            ("square", (500, 500), (224, 224), (0, 0)),
            ("square_float_artefact", (111, 111), (224, 223), (0, 0)),
            ("small", (50, 20), (224, 89), (0, 67)),
            ("even_pad", (300, 100), (224, 74), (0, 75)),
        ]
    )
    def test_shape_pad_floor_rule(self, _, in_hw, resized, pad):
        self.assertEqual(reference_resize_shape(*in_hw, 224), resized)
        img = torch.full((1, *in_hw), 200.0)
        out = ResizeLongestSidePad(224)(img)
        self.assertIsInstance(out, MetaTensor)
        self.assertEqual(tuple(out.shape), (1, 224, 224))
        g = out.meta["afloc_geometry"]
        self.assertEqual((g["resized_size"], g["pad"], g["original_size"], g["frame_size"]), (resized, pad, in_hw, 224))
        self.assertAlmostEqual(g["scale"], 224 / max(in_hw))
        nonzero = torch.nonzero(out[0] > 0)
        self.assertEqual(tuple(nonzero.min(0).values.tolist()), pad)
        self.assertEqual(tuple(nonzero.max(0).values.tolist()), (pad[0] + resized[0] - 1, pad[1] + resized[1] - 1))
        # floor on the top/left: the bottom/right pad is never smaller
        self.assertGreaterEqual(224 - resized[0] - pad[0], pad[0])
        self.assertGreaterEqual(224 - resized[1] - pad[1], pad[1])
        self.assertLessEqual(224 - resized[0] - 2 * pad[0], 1)

    @parameterized.expand([("portrait", (400, 240)), ("landscape", (240, 400))])
    def test_square_lands_where_geometry_says(self, _, in_hw):
        img = torch.zeros(1, *in_hw)
        img[0, 100:140, 60:100] = 255.0
        out = ResizeLongestSidePad(224)(img)
        g = out.meta["afloc_geometry"]
        rows, cols = torch.nonzero(out[0] > 127.5, as_tuple=True)
        top, left = g["pad"]
        s = g["scale"]
        self.assertAlmostEqual(rows.float().mean().item() + 0.5, 120 * s + top, delta=0.6)
        self.assertAlmostEqual(cols.float().mean().item() + 0.5, 80 * s + left, delta=0.6)

    def test_identity_size_and_channels(self):
        img = torch.randint(0, 256, (2, 224, 100)).float()
        out = ResizeLongestSidePad(224)(img)
        torch.testing.assert_close(out[:, :, 62:162].as_tensor(), img, rtol=0, atol=0)

    @parameterized.expand([("area",), ("bilinear",)])
    def test_torch_modes(self, mode):
        img = torch.randint(0, 256, (1, 96, 64)).float()
        out = ResizeLongestSidePad(48, interpolation=mode)(img)
        self.assertEqual(tuple(out.shape), (1, 48, 48))
        self.assertTrue(bool((out == out.round()).all()))
        out_f = ResizeLongestSidePad(48, interpolation=mode, reference_uint8=False)(img / 255.0)
        self.assertEqual(out_f.dtype, torch.float32)
        if mode == "area":  # integer factor 2: same block means as cv2_area
            ref = ResizeLongestSidePad(48, reference_uint8=False)(img / 255.0)
            torch.testing.assert_close(out_f.as_tensor(), ref.as_tensor(), rtol=0, atol=1e-6)

    def test_affine_maps_frame_to_original_pixels(self):
        out = ResizeLongestSidePad(224)(MetaTensor(torch.zeros(1, 300, 100)))
        g = out.meta["afloc_geometry"]
        # the centre of the frame's first valid pixel maps back to within the original image
        r, c = g["pad"]
        point = out.affine.double() @ torch.tensor([r + 0.0, c + 0.0, 0.0, 1.0], dtype=torch.float64)
        self.assertAlmostEqual(point[0].item(), 0.5 * 300 / 224 - 0.5, places=6)
        self.assertAlmostEqual(point[1].item(), 0.5 * 100 / 74 - 0.5, places=6)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            ResizeLongestSidePad(0)
        with self.assertRaises(TypeError):
            ResizeLongestSidePad(224.0)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            ResizeLongestSidePad(224, interpolation="cubic")
        with self.assertRaises(TypeError):
            ResizeLongestSidePad(224, reference_uint8="yes")  # type: ignore[arg-type]
        t = ResizeLongestSidePad(224)
        with self.assertRaisesRegex(ValueError, r"\[C, H, W\]"):
            t(torch.zeros(30, 20))
        with self.assertRaisesRegex(ValueError, "uint8"):
            t(torch.full((1, 30, 20), 0.5))
        with self.assertRaisesRegex(ValueError, "uint8"):
            t(torch.full((1, 30, 20), 300.0))
        with self.assertRaisesRegex(ValueError, "finite"):
            t(torch.full((1, 30, 20), float("nan")))
        with self.assertRaisesRegex(ValueError, "elongated"):
            t(torch.zeros(1, 2000, 1))
        with self.assertRaises(TypeError):
            t([[1, 2]])  # type: ignore[arg-type]


class TestCenterCropFrame(unittest.TestCase):
    def test_crop_updates_geometry(self):
        frame = ResizeLongestSidePad(256)(torch.full((1, 300, 100), 9.0))
        out = CenterCropFrame(224)(frame)
        self.assertEqual(tuple(out.shape), (1, 224, 224))
        torch.testing.assert_close(out.as_tensor(), frame[:, 16:240, 16:240].as_tensor(), rtol=0, atol=0)
        g = out.meta["afloc_geometry"]
        self.assertEqual((g["crop"], g["frame_size"], g["padded_size"], g["pad"]), ((16, 16), 224, 256, (0, 85)))

    def test_torchvision_rounding(self):
        out = CenterCropFrame(4)(torch.arange(49.0).reshape(1, 7, 7))  # (7 - 4) / 2 = 1.5 -> 2 (half to even)
        self.assertEqual(out[0, 0, 0].item(), 2 * 7 + 2)

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            CenterCropFrame(0)
        with self.assertRaises(ValueError):
            CenterCropFrame(300)(torch.zeros(1, 256, 256))
        with self.assertRaises(ValueError):
            CenterCropFrame(10)(torch.zeros(256, 256))
        frame = ResizeLongestSidePad(32)(torch.zeros(1, 40, 20))
        with self.assertRaisesRegex(ValueError, "frame size"):
            CenterCropFrame(10)(frame[:, :, :20])


if __name__ == "__main__":
    unittest.main()
