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
"""Tiny AFLoc networks, batches and trainers shared by the engines tests."""

from __future__ import annotations

import torch

from monai_afloc.networks.nets import AFLoc, AFLocImageEncoder, AFLocTextEncoder
from tests.helpers import make_tiny_bert

__all__ = ["REPORTS", "tiny_afloc", "tiny_batches", "make_trainer", "make_evaluator"]

REPORTS = [
    "small left pleural effusion. no pneumothorax",
    "mild cardiomegaly. lungs are clear",
    "right upper lobe consolidation. no effusion",
    "there is a nodule in the left lower lobe",
    "bilateral pulmonary edema. heart size is enlarged",
    "the lungs are clear. no acute findings",
]


def tiny_afloc(bert_dir: str, seed: int = 0) -> AFLoc:
    """ResNet-18 image encoder without the 299 resize + a 32-wide random BERT (written once to ``bert_dir``)."""
    import os

    if not os.path.isfile(os.path.join(bert_dir, "config.json")):
        make_tiny_bert(bert_dir)
    torch.manual_seed(seed)
    text = AFLocTextEncoder(bert_dir, local_files_only=True)
    image = AFLocImageEncoder("resnet18", embed_dim=text.embed_dim, input_size=None)
    return AFLoc(image, text)


def tiny_batches(net: AFLoc, n_batches: int = 2, batch_size: int = 3, size: int = 32, seed: int = 0) -> list[dict]:
    """Collated batches: ``image [B, 3, size, size]`` and the tokenized reports (max length 24)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for b in range(n_batches):
        texts = [REPORTS[(b * batch_size + i) % len(REPORTS)] for i in range(batch_size)]
        batch = dict(net.tokenize(texts, max_length=24))
        batch["image"] = torch.randn(batch_size, 3, size, size, generator=g)
        batches.append(batch)
    return batches


def make_trainer(net, batches, loss=None, max_epochs=1, handlers=None, iteration=None, lr=1e-3, **kwargs):
    from monai.engines import SupervisedTrainer

    from monai_afloc.engines import AFLocTrainIteration
    from monai_afloc.losses import AFLocLoss

    return SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=batches,
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), lr=lr),
        loss_function=loss if loss is not None else AFLocLoss(),
        iteration_update=iteration if iteration is not None else AFLocTrainIteration(),
        train_handlers=handlers,
        decollate=False,
        **kwargs,
    )


def make_evaluator(net, batches, loss=None, handlers=None):
    import ignite.metrics
    from monai.engines import SupervisedEvaluator

    from monai_afloc.engines import AFLocEvalIteration
    from monai_afloc.losses import AFLocLoss

    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=batches,
        network=net,
        iteration_update=AFLocEvalIteration(loss if loss is not None else AFLocLoss()),
        key_val_metric={"val_loss": ignite.metrics.Average(output_transform=lambda out: out["loss"])},
        metric_cmp_fn=lambda current, best: current < best,
        val_handlers=handlers,
        decollate=False,
    )
