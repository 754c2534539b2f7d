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
from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized
from scipy.ndimage import gaussian_filter

from monai_afloc.inferers.similarity import (
    gaussian_smooth2d,
    rescale_to_unit_range,
    similarity_map,
    upsample_maps,
)


def reference_similarity(regions: np.ndarray, text: np.ndarray, sigma: float) -> np.ndarray:
    """docs/design.md §5 with numpy/scipy, one map at a time."""
    b, d, h, w = regions.shape
    out = np.zeros((b, text.shape[0], h, w))
    for i in range(b):
        for k in range(text.shape[0]):
            m = np.zeros((h, w))
            for y in range(h):
                for x in range(w):
                    m[y, x] = float(np.dot(regions[i, :, y, x], text[k]))
            out[i, k] = gaussian_filter(m, sigma, mode="reflect", truncate=4.0) if sigma > 0 else m
    return out


class TestSimilarity(unittest.TestCase):
    @parameterized.expand([(1.5, 19, 19), (1.5, 5, 7), (3.0, 4, 4), (0.7, 10, 3), (0.0, 6, 6)])
    def test_matches_scipy(self, sigma, h, w):
        rng = np.random.default_rng(0)
        regions = rng.normal(size=(2, 8, h, w)).astype(np.float32)
        text = rng.normal(size=(3, 8)).astype(np.float32)
        got = similarity_map(torch.from_numpy(regions), torch.from_numpy(text), sigma=sigma).numpy()
        np.testing.assert_allclose(got, reference_similarity(regions, text, sigma), rtol=1e-4, atol=1e-4)

    def test_smoothing_batch_dims_and_float64(self):
        x = torch.rand(2, 3, 4, 9, 11, dtype=torch.float64)
        got = gaussian_smooth2d(x, 2.0)
        ref = np.stack([gaussian_filter(m, 2.0, mode="reflect") for m in x.reshape(-1, 9, 11).numpy()])
        np.testing.assert_allclose(got.reshape(-1, 9, 11).numpy(), ref, rtol=1e-10, atol=1e-12)

    def test_rescale(self):
        m = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])
        torch.testing.assert_close(rescale_to_unit_range(m), torch.tensor([[[-1.0, -0.5], [0.0, 1.0]]]))
        valid = torch.tensor([[True, True], [True, False]])
        torch.testing.assert_close(rescale_to_unit_range(m, valid), torch.tensor([[[-1.0, 0.0], [1.0, -1.0]]]))
        const = rescale_to_unit_range(torch.full((1, 3, 3), 5.0))
        self.assertTrue(torch.equal(const, torch.zeros(1, 3, 3)))

    def test_upsample(self):
        self.assertEqual(upsample_maps(torch.rand(1, 2, 19, 19), 224).shape, (1, 2, 224, 224))

    def test_ill_arg(self):
        with self.assertRaises(ValueError):
            similarity_map(torch.rand(8, 19, 19), torch.rand(3, 8))
        with self.assertRaises(ValueError):
            similarity_map(torch.rand(1, 8, 19, 19), torch.rand(3, 7))
        with self.assertRaises(ValueError):
            similarity_map(torch.rand(1, 8, 19, 19), torch.rand(8))
        with self.assertRaises(ValueError):
            similarity_map(torch.rand(1, 8, 19, 19), torch.rand(3, 8), sigma=-1)
        with self.assertRaises(ValueError):
            gaussian_smooth2d(torch.rand(5), 1.0)


if __name__ == "__main__":
    unittest.main()
