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
"""A prompt encoder shared by threads, with an evicting cache, gives every thread its right vectors."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import unittest

import torch

from monai_afloc.inferers.localizer import PromptEncoder
from monai_afloc.networks.nets import AFLocTextEncoder
from tests.helpers import make_tiny_bert

PROMPTS = ["left pleural effusion", "pneumothorax", "cardiomegaly", "right lower lobe consolidation"]


class TestPromptCacheThreads(unittest.TestCase):
    def test_shared_evicting_cache(self):
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as d:
            text = AFLocTextEncoder(make_tiny_bert(os.path.join(d, "bert")), local_files_only=True).eval()
        reference = PromptEncoder(text, cache_size=0)(PROMPTS)
        shared = PromptEncoder(text, cache_size=1)  # every call evicts what another thread is about to read
        errors, barrier = [], threading.Barrier(4)

        def work(offset: int) -> None:
            try:
                barrier.wait()
                for i in range(40):
                    k = (offset + i) % len(PROMPTS)
                    pair = [PROMPTS[k], PROMPTS[(k + 1) % len(PROMPTS)]]
                    torch.testing.assert_close(shared(pair), reference[[k, (k + 1) % len(PROMPTS)]])
            except BaseException as e:  # noqa: B036 - reported to the main thread
                errors.append(e)

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races
        try:
            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(interval)
        self.assertEqual(errors, [])
        self.assertLessEqual(len(shared._cache), 1)


if __name__ == "__main__":
    unittest.main()
