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

import torch

from monai_afloc.networks.blocks import RunningMeanCentering


class TestRunningMeanCentering(unittest.TestCase):
    def test_running_mean_over_valid_positions(self):
        c = RunningMeanCentering(2, momentum=0.5).train()
        x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
        mask = torch.tensor([[1, 1, 0]])
        out = c(x, mask)
        torch.testing.assert_close(c.mean, torch.tensor([2.0, 3.0]))  # the padded position is ignored
        torch.testing.assert_close(out, x - torch.tensor([2.0, 3.0]))
        c(torch.full((1, 3, 2), 4.0), torch.ones(1, 3))
        torch.testing.assert_close(c.mean, torch.tensor([3.0, 3.5]))  # halfway to the new batch's mean
        c.eval()(torch.zeros(1, 3, 2), torch.ones(1, 3))
        torch.testing.assert_close(c.mean, torch.tensor([3.0, 3.5]))  # evaluation never updates it

    def test_ill_arg(self):
        for kwargs in ({"dim": 0}, {"dim": 2.0}, {"dim": 2, "momentum": 0}, {"dim": 2, "momentum": 1.5}):
            with self.assertRaises(ValueError):
                RunningMeanCentering(**kwargs)
        with self.assertRaises(ValueError):
            RunningMeanCentering(3)(torch.zeros(1, 2, 4), torch.ones(1, 2))


if __name__ == "__main__":
    unittest.main()


class TestFourierPositionEncoding(unittest.TestCase):
    def test_shape_and_resolution_free(self):
        from monai_afloc.networks.blocks import FourierPositionEncoding

        pos = FourierPositionEncoding(channels=6, n_frequencies=3, init_std=1.0)
        x = torch.zeros(2, 6, 4, 4)
        out = pos(x)
        self.assertEqual(out.shape, x.shape)
        torch.testing.assert_close(out[0], out[1])  # the same term for every image
        self.assertGreater(float(out.std()), 0.0)
        # cell centres of a 2x2 grid are at +-0.5; those of a 4x4 grid at +-0.75, +-0.25: the term is one smooth field
        f2, f4 = pos.features(2, 2), pos.features(4, 4)
        self.assertEqual(tuple(f4.shape), (4, 4, 12))
        ref = torch.tensor([-0.5, 0.5]) * (torch.pi / 2)
        torch.testing.assert_close(f2[0, :, 0], torch.sin(ref))  # x features vary along the width
        torch.testing.assert_close(f2[:, 0, 6], torch.sin(ref))  # y features along the height
        # mirror symmetry of the sines: the left and right halves differ, so a term can tell left from right
        self.assertFalse(torch.allclose(out[0, :, :, 0], out[0, :, :, -1]))

    def test_dtype_and_grad(self):
        from monai_afloc.networks.blocks import FourierPositionEncoding

        pos = FourierPositionEncoding(channels=4)
        x = torch.randn(1, 4, 3, 5, dtype=torch.float64, requires_grad=True)
        out = pos(x)
        self.assertEqual(out.dtype, torch.float64)
        out.sum().backward()
        self.assertIsNotNone(pos.proj.weight.grad)

    def test_ill_arg(self):
        from monai_afloc.networks.blocks import FourierPositionEncoding

        for kwargs in ({"channels": 0}, {"channels": 4, "n_frequencies": 0}):
            with self.assertRaises(ValueError):
                FourierPositionEncoding(**kwargs)
        with self.assertRaises(TypeError):
            FourierPositionEncoding(channels=4.0)
        with self.assertRaises(ValueError):
            FourierPositionEncoding(channels=4)(torch.zeros(1, 3, 2, 2))
        with self.assertRaises(TypeError):
            FourierPositionEncoding(channels=4)([1, 2])
