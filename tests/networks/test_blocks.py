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
