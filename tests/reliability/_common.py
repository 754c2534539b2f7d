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
"""A tiny AFLoc and its saved checkpoint folder, shared by the reliability tests."""

from __future__ import annotations

import os

import torch

from monai_afloc.checkpoint import save_afloc_checkpoint
from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from tests.helpers import make_tiny_bert


def tiny_checkpoint(root: str) -> tuple[AFLoc, str]:
    """ResNet-18 (no 299 resize) + a 32-wide random BERT, in eval mode, and its checkpoint saved under ``root``."""
    torch.set_num_threads(1)
    bert = make_tiny_bert(os.path.join(root, "bert"), hidden_size=32)
    torch.manual_seed(0)
    net = AFLoc(AFLocImageEncoder("resnet18", embed_dim=32, input_size=None), AFLocTextEncoder(bert)).eval()
    return net, save_afloc_checkpoint(net, os.path.join(root, "ckpt"))
