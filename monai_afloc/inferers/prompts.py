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
Default prompt sets for zero-shot classification and localization, and prompt cleaning.

Templates are our own, in the style of CheXzero/BioViL prompt engineering: several phrasings per finding are
embedded, averaged and normalised. Findings cover the 14 CheXpert labels and the pathologies of MS-CXR, RSNA
Pneumonia, SIIM-ACR Pneumothorax and COVID Rural.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

from monai_afloc.data.mimic import CHEXPERT_FINDINGS
from monai_afloc.data.utils import DEFAULT_PROMPT_TEMPLATE
from monai_afloc.transforms.text.array import clean_report

__all__ = [
    "CHEXPERT_FINDINGS",
    "MS_CXR_FINDINGS",
    "DEFAULT_FINDING_PROMPTS",
    "LOCALIZATION_PROMPT_TEMPLATE",
    "clean_prompt",
    "clean_prompts",
    "finding_prompts",
]

#: the default localization prompt of the annotated readers (one definition, in monai_afloc.data)
LOCALIZATION_PROMPT_TEMPLATE = DEFAULT_PROMPT_TEMPLATE

MS_CXR_FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Lung Opacity",
    "Pleural Effusion",
    "Pneumonia",
    "Pneumothorax",
)

# finding -> the words a radiologist would use for it (first is the canonical phrase)
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": ("enlarged cardiomediastinum", "widened mediastinum"),
    "Cardiomegaly": ("cardiomegaly", "enlarged heart", "enlarged cardiac silhouette"),
    "Lung Opacity": ("lung opacity", "pulmonary opacity", "airspace opacity"),
    "Lung Lesion": ("lung lesion", "pulmonary nodule", "lung mass"),
    "Edema": ("pulmonary edema", "edema", "interstitial edema"),
    "Consolidation": ("consolidation", "airspace consolidation", "lobar consolidation"),
    "Pneumonia": ("pneumonia", "infectious consolidation", "airspace disease compatible with pneumonia"),
    "Atelectasis": ("atelectasis", "subsegmental atelectasis", "volume loss"),
    "Pneumothorax": ("pneumothorax", "pleural air", "collapsed lung"),
    "Pleural Effusion": ("pleural effusion", "pleural fluid", "effusion"),
    "Pleural Other": ("pleural thickening", "pleural abnormality", "pleural scarring"),
    "Fracture": ("rib fracture", "fracture", "osseous fracture"),
    "Support Devices": ("support devices", "endotracheal tube", "central venous catheter"),
    "COVID-19": ("covid 19 pneumonia", "multifocal opacities", "bilateral peripheral opacities"),
    "Nodule": ("nodule", "pulmonary nodule", "small round opacity"),
}

_POSITIVE_TEMPLATES = ("{}", "there is {}", "findings consistent with {}", "{} is present")
_NEGATIVE_TEMPLATES = ("no {}", "there is no {}", "no evidence of {}", "{} is absent")


def finding_prompts(finding: str, synonyms: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    """Positive and negative prompt lists for ``finding`` (its known synonyms, or its lower-cased name)."""
    if not isinstance(finding, str) or not finding.strip():
        raise ValueError(f"finding must be a non-empty string, got {finding!r}.")
    words = synonyms or _SYNONYMS.get(finding, (finding.lower(),))
    return {
        "positive": [t.format(w) for w in words for t in _POSITIVE_TEMPLATES],
        "negative": [t.format(w) for w in words for t in _NEGATIVE_TEMPLATES],
    }


def _default_prompts() -> dict[str, dict[str, list[str]]]:
    out = {f: finding_prompts(f) for f in CHEXPERT_FINDINGS if f != "No Finding"}
    out["No Finding"] = {
        "positive": ["no acute cardiopulmonary process", "the lungs are clear", "normal chest radiograph"],
        "negative": ["acute cardiopulmonary process", "abnormal chest radiograph", "there are abnormal findings"],
    }
    out["COVID-19"] = finding_prompts("COVID-19")
    out["Nodule"] = finding_prompts("Nodule")
    return out


#: finding -> {"positive": [...], "negative": [...]}: CheXpert's 14, plus COVID-19 and Nodule
DEFAULT_FINDING_PROMPTS: dict[str, dict[str, list[str]]] = _default_prompts()


def _cleaning_note(prompt: str, cleaned: str, keep_unicode: bool) -> str | None:
    """Why cleaning changed the words of ``prompt`` (beyond case and punctuation), or None when it did not."""
    words = re.findall(r"\w+", prompt.lower())
    if " ".join(words) == cleaned:
        return None
    if not keep_unicode and any(not w.isascii() for w in words):
        why = (
            "non-ASCII characters are removed; keep_unicode=True keeps them, for a text model with a Unicode vocabulary"
        )
    else:
        why = "one-word sentences and list numbers are removed, as the AFLoc reference cleans text"
    return f"prompt {prompt!r} changed under cleaning: the model sees {cleaned!r} ({why})."


def clean_prompt(prompt: str, keep_unicode: bool = False, warn: bool = True) -> str:
    """
    Clean a free-text prompt as the reference cleans an inference prompt: report cleaning, sentences joined by " ".

    The reference drops one-word pieces; for a one-word prompt ("cardiomegaly") that would leave nothing, so the
    prompt's lower-cased word tokens are kept instead.

    Args:
        prompt: the prompt.
        keep_unicode: keep non-ASCII characters (for a text model with a Unicode vocabulary; the AFLoc release's
            is ASCII, so by default they are removed, as the reference does).
        warn: warn (``UserWarning``) when cleaning changes the prompt's words beyond case and punctuation ("Ödem"
            -> "dem", "Effusion. Left." -> "effusion"); the message says what the model sees.

    Raises:
        TypeError: if ``prompt`` is not a str.
        ValueError: if the prompt holds no word at all (empty, punctuation only).

    Example::

        >>> clean_prompt("Small left pleural effusion.")
        'small left pleural effusion'
    """
    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}.")
    if not isinstance(keep_unicode, bool) or not isinstance(warn, bool):
        raise TypeError(f"keep_unicode and warn must be bools, got {keep_unicode!r}, {warn!r}.")
    sentences = clean_report(prompt, allow_empty=True, keep_unicode=keep_unicode)
    if sentences:
        cleaned = " ".join(sentences)
    else:
        tokens = re.findall(r"\w+", prompt.lower())
        if not keep_unicode:
            tokens = [t.encode("ascii", "ignore").decode("ascii") for t in tokens]
        tokens = [t for t in tokens if t]
        if not tokens:
            raise ValueError(f"empty prompt: {prompt!r} holds no word{'' if keep_unicode else ' in ASCII'}.")
        cleaned = " ".join(tokens)
    note = _cleaning_note(prompt, cleaned, keep_unicode) if warn else None
    if note:
        warnings.warn(note, UserWarning, stacklevel=3)
    return cleaned


def clean_prompts(prompts: str | Sequence[str], keep_unicode: bool = False, warn: bool = True) -> list[str]:
    """
    One prompt or a sequence of prompts -> the list of their :func:`clean_prompt` forms (same order).

    Raises:
        ValueError: if ``prompts`` is neither a str nor a non-empty sequence.
        TypeError, ValueError: as :func:`clean_prompt` for each prompt.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, Sequence) or len(prompts) == 0:
        raise ValueError(f"prompts must be a non-empty str or sequence of str, got {prompts!r}.")
    return [clean_prompt(p, keep_unicode=keep_unicode, warn=warn) for p in prompts]
