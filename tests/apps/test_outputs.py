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
"""Overlays: a figure returned (for notebooks), the caller's matplotlib backend left alone, the PNG written."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
from PIL import Image

from tests.helpers import SkipIfNoModule


@SkipIfNoModule("matplotlib")
class TestOverlayFigure(unittest.TestCase):
    def test_figure_without_backend_change(self):
        import matplotlib
        import matplotlib.figure
        import matplotlib.pyplot as plt

        from monai_afloc.apps.outputs import overlay_figure, save_overlay

        backend = matplotlib.get_backend()
        image = np.zeros((40, 60), np.float32)
        heat = np.linspace(-1, 1, 40 * 60, dtype=np.float32).reshape(40, 60)
        fig = overlay_figure(image, heat, title="effusion", boxes=[{"box": [5, 6, 10, 8], "score": 0.7}],
                             truth_boxes=[[4, 5, 12, 9]])
        self.assertIsInstance(fig, matplotlib.figure.Figure)
        self.assertEqual(fig.axes[0].get_title(), "effusion")
        self.assertEqual(len(fig.axes[0].patches), 2)
        self.assertEqual(matplotlib.get_backend(), backend)  # no matplotlib.use inside the library
        self.assertEqual(plt.get_fignums(), [])  # nothing left open in pyplot
        with tempfile.TemporaryDirectory() as d:
            path = save_overlay(os.path.join(d, "sub", "o.png"), image, heat, title="x")
            self.assertEqual(Image.open(path).format, "PNG")
        with self.assertRaisesRegex(ValueError, "one shape"):
            overlay_figure(image, heat[:10])


if __name__ == "__main__":
    unittest.main()
