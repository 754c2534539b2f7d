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

"""Tests of the reference histogram equalization (equalize_histogram / EqualizeHistogram)."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_afloc.transforms.image import EqualizeHistogram, equalize_histogram
from tests.helpers import SkipIfNoModule


def numpy_equalize(u: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The reference's equalization written with numpy only: 256-bin histogram of u/255, cdf / total, np.interp."""
    x = u / 255.0
    values = x[mask] if mask is not None else x
    hist, edges = np.histogram(values, bins=256)
    cdf = hist.cumsum() / float(hist.sum())
    centers = (edges[:-1] + edges[1:]) / 2.0
    return (255 * np.interp(x, centers, cdf)).astype(np.uint8)


class TestEqualizeHistogram(unittest.TestCase):
    @parameterized.expand([("full", False), ("mask_zero", True)])
    def test_matches_numpy_reference(self, _, mask_zero):
        rng = np.random.default_rng(0)
        u = rng.integers(0, 256, (1, 37, 53)).astype(np.uint8)
        u[0, :, :10] = 0  # a padding-like band
        out = EqualizeHistogram(mask_zero=mask_zero)(torch.from_numpy(u).float())
        self.assertEqual(out.dtype, torch.float32)
        np.testing.assert_array_equal(out.numpy(), numpy_equalize(u, u != 0 if mask_zero else None))

    def test_small_example(self):
        out = equalize_histogram(torch.tensor([0.0, 0.0, 128.0, 255.0]))
        self.assertEqual(out.tolist(), [127.0, 127.0, 191.0, 255.0])

    def test_degenerate_inputs_no_nan(self):
        const = torch.full((1, 8, 8), 40.0)
        out = EqualizeHistogram()(const)
        self.assertTrue(bool(torch.isfinite(out).all()))
        np.testing.assert_array_equal(out.numpy(), numpy_equalize(const.numpy().astype(np.uint8)))  # all 127
        zeros = torch.zeros(1, 8, 8)
        torch.testing.assert_close(EqualizeHistogram(mask_zero=True)(zeros).as_tensor(), zeros)

    def test_ill_arg(self):
        with self.assertRaises(TypeError):
            EqualizeHistogram(mask_zero="yes")  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            EqualizeHistogram(num_bins=1)
        with self.assertRaisesRegex(ValueError, "uint8"):
            EqualizeHistogram()(torch.full((1, 4, 4), 0.5))
        with self.assertRaises(TypeError):
            equalize_histogram(np.zeros((4, 4)))  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            equalize_histogram(torch.zeros(4, 4), mask=torch.ones(3, 3, dtype=torch.bool))


@SkipIfNoModule("skimage")
class TestSkimageParity(unittest.TestCase):
    @parameterized.expand([("full", False), ("mask_zero", True)])
    def test_exact(self, _, mask_zero):
        from skimage import exposure

        rng = np.random.default_rng(1)
        for k in range(6):
            u = rng.integers(0, 256, (64, 48)).astype(np.uint8)
            if k % 2:
                u = (u // 37 * 37 + 3).astype(np.uint8)  # few levels, many exact-edge values
            u[:, :5] = 0
            mask = (u != 0) if mask_zero else None
            ref = (255 * exposure.equalize_hist(u / 255.0, mask=mask)).astype(np.uint8)
            out = equalize_histogram(torch.from_numpy(u).float(), torch.from_numpy(mask) if mask_zero else None)
            np.testing.assert_array_equal(out.numpy(), ref)


if __name__ == "__main__":
    unittest.main()
