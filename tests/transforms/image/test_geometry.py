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

"""Tests of PreprocessGeometry and the frame <-> original mappings (heatmaps, masks, boxes)."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from monai.data import list_data_collate
from parameterized import parameterized

from monai_afloc.transforms.image import (
    CenterCropFrame,
    PreprocessGeometry,
    ResizeLongestSidePad,
    center_crop_offset,
    frame_boxes_to_original,
    frame_to_original,
    longest_side_resize_shape,
    original_boxes_to_frame,
    valid_frame_mask,
)


def geometry_for(shape: tuple[int, int], size: int = 224) -> PreprocessGeometry:
    out = ResizeLongestSidePad(size)(torch.zeros(1, *shape))
    return PreprocessGeometry.from_dict(out.meta["afloc_geometry"])


def train_geometry_for(shape: tuple[int, int]) -> PreprocessGeometry:
    out = CenterCropFrame(224)(ResizeLongestSidePad(256)(torch.zeros(1, *shape)))
    return PreprocessGeometry.from_dict(out.meta["afloc_geometry"])


def reference_box_mapping(box, w: int, h: int, scale: int) -> np.ndarray:
    """The AFLoc evaluation's box mapping into the padded frame (x, y, w, h), re-expressed for the test."""
    box = np.array(box, dtype=np.float64)
    if h >= w:
        factor = scale / float(h)
        new_w = int(float(w) * factor)
        top, left = 0, int(np.floor((scale - new_w) / 2))
    else:
        factor = scale / float(w)
        new_h = int(float(h) * factor)
        top, left = int(np.floor((scale - new_h) / 2)), 0
    box = box * factor
    return np.floor(box + np.array([left, top, 0, 0]))


SHAPES = [("portrait", (300, 101)), ("landscape", (101, 300)), ("square", (512, 512)), ("small", (50, 20))]


class TestPreprocessGeometry(unittest.TestCase):
    def test_dict_round_trip_and_collate(self):
        g1, g2 = geometry_for((300, 101)), train_geometry_for((101, 300))
        self.assertEqual(PreprocessGeometry.from_dict(g1.to_dict()), g1)
        batch = list_data_collate([{"g": g1.to_dict()}, {"g": g2.to_dict()}])
        self.assertEqual(PreprocessGeometry.from_batch(batch["g"]), [g1, g2])

    def test_offsets(self):
        g = train_geometry_for((300, 100))  # 256 x 85, pad (0, 85), crop (16, 16)
        self.assertEqual((g.resized_size, g.pad, g.crop, g.offset), ((256, 85), (0, 85), (16, 16), (-16, 69)))
        self.assertEqual(longest_side_resize_shape(111, 111, 224), ((224, 223), 224 / 111))
        self.assertEqual(center_crop_offset(256, 224), 16)

    def test_ill_arg(self):
        good = {"original_size": (300, 100), "resized_size": (224, 74), "scale": 224 / 300, "pad": (0, 75)}
        good["frame_size"] = 224
        PreprocessGeometry(**good)
        for bad, err in (
            ({"pad": (-1, 75)}, ValueError),
            ({"pad": (0, 151)}, ValueError),
            ({"scale": 0.0}, ValueError),
            ({"scale": float("nan")}, ValueError),
            ({"scale": "big"}, TypeError),
            ({"frame_size": 2.5}, TypeError),
            ({"original_size": (300,)}, TypeError),
            ({"crop": (10, 10)}, ValueError),
        ):
            with self.assertRaises(err, msg=str(bad)):
                PreprocessGeometry(**{**good, **bad})
        with self.assertRaisesRegex(ValueError, "lacks keys"):
            PreprocessGeometry.from_dict({"scale": 1.0})
        with self.assertRaises(TypeError):
            PreprocessGeometry.from_dict([1, 2])  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            longest_side_resize_shape(3000, 1, 224)
        with self.assertRaises(ValueError):
            center_crop_offset(200, 224)


class TestValidMask(unittest.TestCase):
    @parameterized.expand(SHAPES)
    def test_counts(self, _, shape):
        g = geometry_for(shape)
        mask = valid_frame_mask(g)
        self.assertEqual(mask.dtype, torch.bool)
        self.assertEqual(int(mask.sum()), g.resized_size[0] * g.resized_size[1])
        frame = ResizeLongestSidePad(224)(torch.full((1, *shape), 255.0))
        torch.testing.assert_close(mask, frame[0].as_tensor() > 0)

    def test_train_crop(self):
        g = train_geometry_for((300, 100))  # rows cut by the crop: 224 x 85 visible
        self.assertEqual(int(valid_frame_mask(g).sum()), 224 * 85)


class TestFrameToOriginal(unittest.TestCase):
    @parameterized.expand(SHAPES)
    def test_constant_and_valid_region(self, _, shape):
        g = geometry_for(shape)
        back = frame_to_original(torch.full((224, 224), 3.5), g)
        self.assertEqual(tuple(back.shape), shape)
        torch.testing.assert_close(back, torch.full(shape, 3.5), rtol=0, atol=1e-6)
        inside = frame_to_original(valid_frame_mask(g), g, mode="nearest")
        self.assertTrue(bool((inside == 1).all()))  # every original pixel comes from a real-image frame pixel

    @parameterized.expand(SHAPES)
    def test_smooth_round_trip(self, _, shape):
        h, w = shape
        yy, xx = torch.meshgrid(torch.arange(h) / h, torch.arange(w) / w, indexing="ij")
        original = (100 + 60 * yy + 90 * xx)[None]
        frame = ResizeLongestSidePad(224, interpolation="bilinear", reference_uint8=False)(original)
        back = frame_to_original(frame, PreprocessGeometry.from_dict(frame.meta["afloc_geometry"]))
        self.assertLess((back - original).abs().max().item(), 2.0)
        self.assertLess((back - original).abs().mean().item(), 0.5)

    def test_batched_and_orientation(self):
        g = geometry_for((300, 101))
        maps = torch.rand(2, 3, 224, 224)
        maps[1, 2] = 0
        maps[1, 2, 20:40, 100:120] = 1.0  # a hot spot in the frame
        back = frame_to_original(maps, g)
        self.assertEqual(tuple(back.shape), (2, 3, 300, 101))
        torch.testing.assert_close(back[0, 1], frame_to_original(maps[0, 1], g))
        rows, cols = torch.nonzero(back[1, 2] > 0.5, as_tuple=True)
        s, (top, left) = g.scale, g.offset
        self.assertAlmostEqual(rows.float().mean().item() + 0.5, (30 - top) / s, delta=1.5)
        self.assertAlmostEqual(cols.float().mean().item() + 0.5, (110 - left) / s, delta=1.5)

    def test_train_crop_fills_nan_outside_frame(self):
        g = train_geometry_for((300, 100))
        back = frame_to_original(torch.ones(224, 224), g)
        finite_rows = torch.isfinite(back).all(1)
        self.assertFalse(bool(finite_rows[0]))
        self.assertFalse(bool(finite_rows[-1]))
        self.assertTrue(bool(finite_rows[40:260].all()))
        self.assertTrue(bool((back[torch.isfinite(back)] == 1).all()))

    def test_ill_arg(self):
        g = geometry_for((300, 101))
        with self.assertRaises(TypeError):
            frame_to_original(np.zeros((224, 224)), g)  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "224"):
            frame_to_original(torch.zeros(1, 200, 224), g)
        with self.assertRaises(ValueError):
            frame_to_original(torch.zeros(224, 224), g, mode="cubic-spline")


class TestBoxes(unittest.TestCase):
    @parameterized.expand(SHAPES)
    def test_round_trip(self, _, shape):
        g = geometry_for(shape)
        boxes = [[3.0, 7.5, 10.0, 4.25], [0.0, 0.0, float(shape[1]), float(shape[0])]]
        boxes = torch.tensor(boxes, dtype=torch.float64)
        torch.testing.assert_close(frame_boxes_to_original(original_boxes_to_frame(boxes, g), g), boxes)
        as_np = original_boxes_to_frame(boxes.numpy(), g)
        self.assertIsInstance(as_np, np.ndarray)
        np.testing.assert_allclose(frame_boxes_to_original(as_np, g), boxes.numpy())
        full = original_boxes_to_frame(boxes[1], g)  # the whole image covers the valid region
        top, left = g.offset
        torch.testing.assert_close(full[:2], torch.tensor([left, top], dtype=torch.float64))
        self.assertLess(abs(full[2].item() - g.resized_size[1]), 1.0)
        self.assertLess(abs(full[3].item() - g.resized_size[0]), 1.0)

    @parameterized.expand(SHAPES)
    def test_floor_matches_reference(self, _, shape):
        g = geometry_for(shape)
        rng = np.random.default_rng(0)
        boxes = rng.uniform(0, min(shape), (20, 4)).round()
        expected = np.stack([reference_box_mapping(b, shape[1], shape[0], 224) for b in boxes])
        np.testing.assert_array_equal(original_boxes_to_frame(boxes, g, floor=True), expected)

    def test_ill_arg(self):
        g = geometry_for((300, 101))
        with self.assertRaises(ValueError):
            original_boxes_to_frame([[1.0, 2.0, 3.0]], g)
        with self.assertRaises(ValueError):
            frame_boxes_to_original(torch.zeros(2, 5), g)


if __name__ == "__main__":
    unittest.main()


class TestMaskToFrame(unittest.TestCase):
    def test_mask_round_trip_and_geometry_for_size(self):
        import torch as _torch

        from monai_afloc.transforms.image import AFLocImagePreprocess, geometry_for_size, original_mask_to_frame
        from monai_afloc.transforms.image.geometry import GEOMETRY_META_KEY, PreprocessGeometry

        g = geometry_for_size(300, 120)
        ref = PreprocessGeometry.from_dict(AFLocImagePreprocess()(_torch.zeros(1, 300, 120)).meta[GEOMETRY_META_KEY])
        self.assertEqual(g, ref)
        mask = _torch.zeros(300, 120, dtype=_torch.bool)
        mask[150:200, 20:60] = True
        frame = original_mask_to_frame(mask, g)
        self.assertEqual(tuple(frame.shape), (224, 224))
        rows, cols = _torch.nonzero(frame, as_tuple=True)
        top, left = g.offset
        # nearest-exact sampling of pixel centres: rows 150..199 -> 112..148, cols 20..59 -> 15..43 (+ left pad)
        self.assertEqual((int(rows.min()), int(rows.max())), (112, 148))
        self.assertEqual((int(cols.min()) - left, int(cols.max()) - left), (15, 43))
        self.assertFalse(bool(frame[:, :left].any()))
        with self.assertRaises(ValueError):
            original_mask_to_frame(mask[:10], g)
