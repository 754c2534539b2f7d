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
Array (plain value) transforms acting on an image and its report together: none of its own yet.

A laterality-aware flip is made of two array transforms that already exist, one per kind of data:
:class:`monai.transforms.Flip` for the image and :class:`monai_afloc.transforms.text.SwapLaterality` for the text.
What must hold them together is one random draw for both, which is the work of the dictionary transform
:class:`monai_afloc.transforms.multimodal.RandLateralFlipd` (:mod:`monai_afloc.transforms.multimodal.dictionary`).
"""

from __future__ import annotations

__all__: list[str] = []
