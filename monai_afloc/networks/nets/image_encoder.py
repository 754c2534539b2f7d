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

"""
AFLoc image encoder: a MONAI CNN backbone with three projection heads (word-, sentence- and report-level).

The design follows the AFLoc release (Apache-2.0; itself built on GLoRIA): the image is upsampled to 299×299,
layer2 features are projected to word-level region embeddings, layer3 features to sentence-level region embeddings
and the pooled layer4 features to the report-level image vector. Backbones come from ``monai.networks.nets`` and
keep torchvision's parameter names, so torchvision / AFLoc weights load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.nets import DenseNet121, resnet10, resnet18, resnet34, resnet50
from monai.utils import look_up_option

from monai_afloc.networks.blocks.position import FourierPositionEncoding
from monai_afloc.utils.enums import AFLocKeys
from monai_afloc.utils.validation import check_int

__all__ = ["AFLocImageEncoder", "SUPPORTED_IMAGE_BACKBONES"]

#: backbone name -> (layer2 channels, layer3 channels, layer4 channels)
SUPPORTED_IMAGE_BACKBONES: dict[str, tuple[int, int, int]] = {
    "resnet10": (128, 256, 512),
    "resnet18": (128, 256, 512),
    "resnet34": (128, 256, 512),
    "resnet50": (512, 1024, 2048),
    "densenet121": (512, 1024, 1024),
}

_RESNETS = {"resnet10": resnet10, "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}


def _build_backbone(name: str, in_channels: int, stem_pool: bool = True, layer3_stride: int = 2) -> nn.Module:
    if name in _RESNETS:
        # these arguments give exactly torchvision's parameter names and numerics
        net = _RESNETS[name](
            spatial_dims=2,
            n_input_channels=in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            shortcut_type="B",
            bias_downsample=False,
            feed_forward=False,
            no_max_pool=not stem_pool,
        )
        net.fc = None
        if layer3_stride == 1:
            # the first layer3 block downsamples in one 3x3 convolution and its 1x1 shortcut: stride 1 in both keeps
            # layer2's grid (the parameters are unchanged, so weights load either way)
            for module in net.layer3[0].modules():
                if isinstance(module, nn.Conv2d) and module.stride == (2, 2):
                    module.stride = (1, 1)
        return net
    if not stem_pool:
        raise ValueError(f"stem_pool=False is available for the ResNet backbones, not {name!r}.")
    if layer3_stride != 2:
        raise ValueError(f"layer3_stride=1 is available for the ResNet backbones, not {name!r}.")
    net = DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1)
    return net.features  # keys: conv0, norm0, ..., denseblock4, norm5 (torchvision's "features.*" minus the prefix)


class AFLocImageEncoder(nn.Module):
    """
    Multi-level image encoder of AFLoc.

    Args:
        backbone: one of ``"resnet50"`` (reference), ``"resnet10"`` (fast CPU demos), ``"resnet18"``, ``"resnet34"``,
            ``"densenet121"``.
        embed_dim: width ``D`` of the joint image-text space (768 for BERT-base, 384 for MiniLM).
        in_channels: number of input channels (3 in the reference: grayscale repeated).
        input_size: the encoder resizes its input to ``input_size × input_size`` (bilinear, ``align_corners=True``)
            before the backbone, as the reference does with 299. ``None`` keeps the input size.
        freeze_backbone: if True the backbone's parameters get ``requires_grad=False`` (the heads stay trainable).
        backbone_weights: optional path to a torchvision-format state dict of the backbone (e.g. ImageNet
            ``resnet50`` weights saved beforehand); loaded with ``weights_only=True``; ``fc.*`` keys are ignored.
        stem_pool: keep the stem's 3x3 stride-2 max pool (True, reference). ``False`` (ResNets only) drops it, which
            doubles every feature grid (e.g. ResNet at 128 px: sentence-level regions 16x16 instead of 8x8) for about
            4x the backbone's compute; the parameters are the same, so weights load either way.
        layer3_stride: stride of the first layer3 block (2, reference). ``1`` (ResNets only) keeps layer2's grid for
            the sentence-level regions: ResNet at 128 px gives a 16x16 sentence grid instead of 8x8 for about 1.5x the
            backbone's compute (layer3 and layer4 run on 4x the positions); the parameters are the same.
        position_encoding: ``0`` (reference): none. ``K >= 1``: a learned :class:`~monai_afloc.networks.blocks.
            FourierPositionEncoding` with ``K`` frequencies is added to the word- and sentence-level region
            embeddings (one per level), so that the text–region alignment can learn where findings and location words
            point to; not in the reference.
        normalize_regions: L2-normalise every region embedding (word and sentence level) over ``D`` (False,
            reference). With it the dot-product heatmap of a prompt is its cosine with each region times the prompt's
            norm; meant for the multiple-instance local loss (:class:`monai_afloc.losses.MILLocalContrastiveLoss`),
            which compares by cosine.

    Shapes (reference, 299 input, ResNet-50): ``image_words`` ``[B, D, 38, 38]``, ``image_sentences``
    ``[B, D, 19, 19]``, ``image_report`` ``[B, D]``.

    Example::

        >>> enc = AFLocImageEncoder(backbone="resnet18", embed_dim=64, input_size=None)
        >>> out = enc(torch.rand(2, 3, 224, 224))
        >>> out["image_sentences"].shape
        torch.Size([2, 64, 14, 14])

    Raises:
        ValueError: on an unknown backbone, a non-positive ``embed_dim``/``in_channels``/``input_size`` or an input
            that is not ``[B, in_channels, H, W]``.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        embed_dim: int = 768,
        in_channels: int = 3,
        input_size: int | None = 299,
        freeze_backbone: bool = False,
        backbone_weights: str | None = None,
        stem_pool: bool = True,
        layer3_stride: int = 2,
        position_encoding: int = 0,
        normalize_regions: bool = False,
    ) -> None:
        super().__init__()
        backbone = look_up_option(backbone, tuple(SUPPORTED_IMAGE_BACKBONES))
        if not isinstance(stem_pool, bool):
            raise TypeError(f"stem_pool must be a bool, got {type(stem_pool).__name__}: {stem_pool!r}.")
        self.stem_pool = stem_pool
        self.layer3_stride = check_int("layer3_stride", layer3_stride, minimum=1, maximum=2)
        self.position_encoding = check_int("position_encoding", position_encoding, minimum=0)
        if not isinstance(normalize_regions, bool):
            raise TypeError(f"normalize_regions must be a bool, got {type(normalize_regions).__name__}.")
        self.normalize_regions = normalize_regions
        for name, value in (("embed_dim", embed_dim), ("in_channels", in_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if input_size is not None and (not isinstance(input_size, int) or isinstance(input_size, bool) or input_size < 32):
            raise ValueError(f"input_size must be None or an int >= 32, got {input_size!r}.")
        self.backbone_name = backbone
        self.embed_dim = embed_dim
        self.in_channels = in_channels
        self.input_size = input_size
        c2, c3, c4 = SUPPORTED_IMAGE_BACKBONES[backbone]
        self.feature_channels = (c2, c3, c4)
        self.backbone = _build_backbone(backbone, in_channels, stem_pool, self.layer3_stride)
        if backbone_weights is not None:
            self.load_backbone_weights(backbone_weights)
        # names follow the AFLoc release so its checkpoints map one to one
        self.local2_embedder = nn.Conv2d(c2, embed_dim, kernel_size=1, bias=False)  # layer2 -> word-level regions
        self.local_embedder = nn.Conv2d(c3, embed_dim, kernel_size=1, bias=False)  # layer3 -> sentence-level regions
        self.global_embedder = nn.Linear(c4, embed_dim)  # pooled layer4 -> report-level vector
        if self.position_encoding:
            self.word_position = FourierPositionEncoding(embed_dim, self.position_encoding)
            self.sentence_position = FourierPositionEncoding(embed_dim, self.position_encoding)
        if freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    def load_backbone_weights(self, path: str) -> None:
        """Load a torchvision-format backbone state dict (``fc.*``/``classifier.*`` ignored); strict otherwise."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if self.backbone_name == "densenet121":
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
        own = self.backbone.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        misshapen = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
        if missing or unexpected or misshapen:
            raise ValueError(
                f"backbone weights in {path!r} do not match {self.backbone_name}: missing {missing[:10]}, "
                f"unexpected {unexpected[:10]}, misshapen {misshapen[:10]}."
            )
        self.backbone.load_state_dict(state)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = self.backbone
        if self.backbone_name == "densenet121":
            x = b.pool0(b.relu0(b.norm0(b.conv0(x))))
            x = b.transition1(b.denseblock1(x))
            f2 = b.denseblock2(x)
            f3 = b.denseblock3(b.transition2(f2))
            f4 = F.relu(b.norm5(b.denseblock4(b.transition3(f3))))
            return f2, f3, f4
        x = b.act(b.bn1(b.conv1(x)))
        if self.stem_pool:
            x = b.maxpool(x)
        f2 = b.layer2(b.layer1(x))
        f3 = b.layer3(f2)
        f4 = b.layer4(f3)
        return f2, f3, f4

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """
        Args:
            image: ``[B, C, H, W]`` float tensor (the reference expects values normalised to about [-1, 1]).

        Returns:
            dict with ``image_words`` ``[B, D, h2, w2]``, ``image_sentences`` ``[B, D, h3, w3]`` and
            ``image_report`` ``[B, D]`` (keys: :class:`~monai_afloc.utils.enums.AFLocKeys`).
        """
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}.")
        if image.ndim != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"image must be [B, {self.in_channels}, H, W], got shape {tuple(image.shape)}.")
        if not image.is_floating_point():
            raise TypeError(f"image must be a floating point tensor, got {image.dtype}.")
        if self.input_size is not None and tuple(image.shape[-2:]) != (self.input_size, self.input_size):
            image = F.interpolate(image, size=(self.input_size, self.input_size), mode="bilinear", align_corners=True)
        f2, f3, f4 = self._features(image)
        pooled = torch.flatten(F.adaptive_avg_pool2d(f4, 1), 1)
        words, sentences = self.local2_embedder(f2), self.local_embedder(f3)
        if self.position_encoding:
            words, sentences = self.word_position(words), self.sentence_position(sentences)
        if self.normalize_regions:
            words, sentences = F.normalize(words, dim=1), F.normalize(sentences, dim=1)
        return {
            AFLocKeys.IMAGE_WORDS: words,
            AFLocKeys.IMAGE_SENTENCES: sentences,
            AFLocKeys.IMAGE_REPORT: self.global_embedder(pooled),
        }

    def feature_grid_sizes(self, input_size: int | Sequence[int] = 224) -> tuple[tuple[int, int], tuple[int, int]]:
        """
        The ``(h2, w2)`` word-level and ``(h3, w3)`` sentence-level grid sizes for an input image of ``input_size``
        (ignored when the encoder resizes every input to its own ``input_size``).

        Computed by arithmetic from the backbone's strides (no forward pass, so no tensor is made on any device):
        ResNets halve with ``ceil`` four times to layer3 (stem convolution, max pool, layer2, layer3; three times
        with ``stem_pool=False``, so every grid doubles); DenseNet-121
        halves with ``ceil`` twice (stem convolution, max pool) and with ``floor`` in each transition's 2×2 average
        pool. Reference (ResNet-50, 299): ``((38, 38), (19, 19))``.

        Example::

            >>> AFLocImageEncoder("resnet18", embed_dim=8, input_size=None).feature_grid_sizes(128)
            ((16, 16), (8, 8))
        """
        if isinstance(input_size, int) and not isinstance(input_size, bool):
            size = (input_size, input_size)
        elif isinstance(input_size, Sequence) and len(input_size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in input_size
        ):
            size = (int(input_size[0]), int(input_size[1]))
        else:
            raise TypeError(f"input_size must be an int or a pair of ints, got {input_size!r}.")
        if self.input_size is not None:
            size = (self.input_size, self.input_size)
        if min(size) < 1:
            raise ValueError(f"input_size must be positive, got {size}.")

        def grids(n: int) -> tuple[int, int]:
            n = -(-n // 2)  # stem convolution (stride 2, ceil)
            if self.stem_pool:
                n = -(-n // 2)  # stem max pool (stride 2, ceil); without it (stem_pool=False) every grid doubles
            if self.backbone_name == "densenet121":
                word = n // 2  # transition1: 2x2 average pool, floor
                return word, word // 2  # transition2
            word = -(-n // 2)  # layer2 (stride 2, ceil)
            return word, -(-word // self.layer3_stride)  # layer3 (stride 2, ceil; 1 with layer3_stride=1)

        (h2, h3), (w2, w3) = grids(size[0]), grids(size[1])
        return (h2, w2), (h3, w3)
