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
Radiology-style report text for the synthetic chest X-ray cases.

Every finding gets a location-bearing phrase ("small left pleural effusion") and a location-free one
("pleural effusion"), drawn from several templates and synonyms; the location-free phrase is always a substring of
the location-bearing one, and the location-bearing phrase is always a substring of the report. Sentences are either
purely positive (they name present findings only) or purely negative (they negate absent findings only); negations
cover some, not all, absent findings. Laterality is the patient's side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["SYNTHETIC_LOCATION_WORDS", "describe_finding", "compose_report"]

#: words that carry location in the phrases; a location-free phrase contains none of them
SYNTHETIC_LOCATION_WORDS: tuple[str, ...] = (
    "left",
    "right",
    "bilateral",
    "bilaterally",
    "upper",
    "mid",
    "middle",
    "lower",
    "zone",
    "lung",
    "base",
    "basal",
    "basilar",
    "apex",
    "apical",
    "apicolateral",
    "lateral",
    "perihilar",
    "hilar",
    "sided",
)

# zone -> noun phrases ("in the right {np}") and adjectival forms ("right {adj} consolidation")
_ZONE_NP = {
    "upper": ("upper zone", "upper lung", "upper lung zone"),
    "middle": ("mid lung", "mid zone", "mid lung zone", "middle zone"),
    "lower": ("lower zone", "lower lung", "lung base", "lower lung zone"),
}
_ZONE_ADJ = {
    "upper": ("upper zone", "upper lung"),
    "middle": ("mid lung", "mid zone"),
    "lower": ("lower zone", "lower lung", "basilar", "basal"),
}
_POSITIVE = ("There is {p}.", "{P} is seen.", "{P} is present.", "{P} is noted.", "{P}.")
_POSITIVE_PLURAL = ("There are {p}.", "{P} are seen.", "{P} are present.", "{P}.")

_NEGATIONS = {
    "Consolidation": ("No focal consolidation.", "There is no focal consolidation.", "No airspace opacity."),
    "Nodule": ("No suspicious pulmonary nodules.", "No pulmonary nodule is identified.", "No nodules are seen."),
    "Pleural Effusion": ("No pleural effusion.", "There is no pleural effusion.", "No pleural effusions are seen."),
    "Pneumothorax": ("No pneumothorax.", "There is no pneumothorax.", "No pneumothorax is seen."),
    "Cardiomegaly": (
        "Heart size is normal.",
        "The cardiac silhouette is normal in size.",
        "The heart is not enlarged.",
        "No cardiomegaly.",
    ),
    "Atelectasis": ("No atelectasis.", "There is no evidence of atelectasis."),
    "Edema": ("No pulmonary edema.", "There is no pulmonary edema.", "No evidence of pulmonary vascular congestion."),
}
_IMPRESSION_NORMAL = (
    "No acute cardiopulmonary process.",
    "No acute cardiopulmonary abnormality.",
    "Normal chest radiograph.",
    "No radiographic evidence of acute disease.",
)
_IMPRESSION_EXTRA = {
    "Consolidation": (", concerning for pneumonia", ", which may represent pneumonia", ""),
    "Nodule": (", recommend chest CT for further characterization", ""),
    "Edema": (", consistent with fluid overload", ""),
}
_LUNG_FINDINGS = ("Consolidation", "Nodule", "Atelectasis", "Edema", "Pleural Effusion", "Pneumothorax")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _countable(name: str, phrase: str) -> bool:
    """Whether "there is" needs an article before this phrase."""
    if name in ("Atelectasis", "Edema"):
        return False
    if name == "Cardiomegaly":
        return "enlarged cardiac silhouette" in phrase
    return True


def _article(phrase: str) -> str:
    first = phrase.split(" ", 1)[0]
    vowel = first[:1] in "aeiou" or first in ("8", "11", "18") or (first.isdigit() and first.startswith("8"))
    return "an" if vowel else "a"


def _join(*words: str) -> str:
    return " ".join(w for w in words if w)


def describe_finding(spec: Mapping[str, Any], rng: np.random.Generator) -> tuple[str, str, bool]:
    """
    Location-bearing phrase, location-free phrase and plural flag for one finding.

    Args:
        spec: a finding with keys ``name`` (one of ``SYNTHETIC_FINDINGS``), ``laterality`` ("left", "right",
            "bilateral" or "none"), ``zone`` ("upper", "middle", "lower" or "none"), ``severity`` (an adjective such
            as "small", "mild", "subtle") and, for a nodule, ``size_mm`` (int).
        rng: the case's random generator (draws the template and synonyms).

    Returns:
        ``(phrase, phrase_location_free, plural)``; ``phrase_location_free`` is a substring of ``phrase``.

    Example::

        >>> describe_finding({"name": "Pneumothorax", "laterality": "left", "zone": "upper", "severity": "small"},
        ...                  np.random.default_rng(0))[1]
        'pneumothorax'
    """
    name, side, zone, sev = spec["name"], spec["laterality"], spec["zone"], spec["severity"]
    if name == "Consolidation":
        noun = _pick(rng, ("consolidation", "airspace opacity", "airspace consolidation", "opacity"))
        mod = sev if sev in ("subtle", "dense", "patchy", "focal", "ill-defined") else ""
        if rng.random() < 0.5:
            return _join(mod, noun, "in the", side, _pick(rng, _ZONE_NP[zone])), noun, False
        return _join(mod, side, _pick(rng, _ZONE_ADJ[zone]), noun), noun, False
    if name == "Nodule":
        noun = _pick(rng, ("nodule", "pulmonary nodule", "nodular density"))
        style = int(rng.integers(3))
        if style == 0:
            return _join(f"{int(spec['size_mm'])} mm", noun, "in the", side, _pick(rng, _ZONE_NP[zone])), noun, False
        if style == 1:
            return _join(sev, noun, "in the", side, _pick(rng, _ZONE_NP[zone])), noun, False
        return _join(sev, side, _pick(rng, _ZONE_ADJ[zone]), noun), noun, False
    if name == "Pleural Effusion":
        if side == "bilateral":
            noun = _pick(rng, ("pleural effusions", "effusions"))
            if rng.random() < 0.5:
                return _join(sev, "bilateral", noun), noun, True
            return _join(sev, noun, "bilaterally"), noun, True
        style = int(rng.integers(4))
        if style == 0:
            return _join(sev, side, "pleural effusion"), "pleural effusion", False
        if style == 1:
            return _join(sev, f"{side}-sided", "pleural effusion"), "pleural effusion", False
        if style == 2:
            return _join(sev, side, "effusion"), "effusion", False
        return _join(sev, "amount of", side, "pleural fluid"), "pleural fluid", False
    if name == "Pneumothorax":
        style = int(rng.integers(4))
        if style == 0:
            return _join(sev, side, "apical pneumothorax"), "pneumothorax", False
        if style == 1:
            return _join(sev, side, "apicolateral pneumothorax"), "pneumothorax", False
        if style == 2:
            return _join(sev, f"{side}-sided", "pneumothorax"), "pneumothorax", False
        return _join(sev, "pneumothorax at the", side, "apex"), "pneumothorax", False
    if name == "Cardiomegaly":
        style = int(rng.integers(3))
        if style == 0:
            return _join(sev, "cardiomegaly"), "cardiomegaly", False
        if style == 1:
            adverb = {"mild": "mildly", "moderate": "moderately", "marked": "markedly"}.get(sev, "")
            return _join(adverb, "enlarged cardiac silhouette"), "enlarged cardiac silhouette", False
        return _join(sev, "enlargement of the cardiac silhouette"), "enlargement of the cardiac silhouette", False
    if name == "Atelectasis":
        noun = _pick(rng, ("atelectasis", "linear atelectasis", "plate-like atelectasis", "subsegmental atelectasis"))
        if rng.random() < 0.5:
            return _join(sev, noun, "in the", side, _pick(rng, _ZONE_NP[zone])), noun, False
        return _join(sev, side, _pick(rng, _ZONE_ADJ[zone]), noun), noun, False
    if name == "Edema":
        noun = _pick(rng, ("pulmonary edema", "interstitial edema", "edema"))
        if side in ("left", "right"):  # only one lung in view
            if rng.random() < 0.5:
                return _join(sev, noun, "in the", side, "perihilar region"), noun, False
            return _join(sev, side, "perihilar", noun), noun, False
        style = int(rng.integers(3))
        if style == 0:
            return _join(sev, noun, "in a bilateral perihilar distribution"), noun, False
        if style == 1:
            return _join(sev, "bilateral perihilar", noun), noun, False
        return _join(sev, noun, "with bilateral perihilar haziness"), noun, False
    raise ValueError(f"unknown finding name: expected one of the synthetic findings, got {name!r}.")


def compose_report(
    findings: Sequence[Mapping[str, Any]], absent: Sequence[str], view: str, rng: np.random.Generator
) -> tuple[str, str, str]:
    """
    Compose a report ("FINDINGS: ... IMPRESSION: ...") for one case.

    Args:
        findings: the present findings, each with ``name``, ``phrase`` and ``plural`` (from :func:`describe_finding`).
        absent: names of the absent findings; a random subset of them is negated.
        view: "PA" or "AP".
        rng: the case's random generator.

    Returns:
        ``(report, findings_section, impression_section)``.

    Example::

        >>> report, _, _ = compose_report([], ["Pneumothorax"], "PA", np.random.default_rng(0))
        >>> report.startswith("FINDINGS:")
        True
    """
    present = {f["name"] for f in findings}
    sentences: list[str] = []
    if rng.random() < 0.4:
        sentences.append(_pick(rng, ("PA view of the chest.", "Frontal view of the chest."))
                         if view == "PA" else _pick(rng, ("Portable AP view of the chest.", "AP view of the chest.")))
    order = {n: i for i, n in enumerate(("Edema", "Consolidation", "Nodule", "Atelectasis", "Pleural Effusion",
                                         "Pneumothorax", "Cardiomegaly"))}
    for f in sorted(findings, key=lambda f: order[f["name"]]):
        template = _pick(rng, _POSITIVE_PLURAL if f["plural"] else _POSITIVE)
        phrase = f["phrase"]
        if template.startswith("There is ") and _countable(f["name"], phrase):
            template = "There is " + _article(phrase) + " {p}."
        sentences.append(template.format(p=phrase, P=_cap(phrase)))
    if not present.intersection(_LUNG_FINDINGS):
        if rng.random() < 0.8:
            sentences.append(_pick(rng, ("The lungs are clear.", "The lungs are well expanded and clear.",
                                         "Lungs are clear bilaterally.")))
    elif rng.random() < 0.3:
        sentences.append("The lungs are otherwise clear.")
    negated = [n for n in absent if rng.random() < 0.5]
    if "Pleural Effusion" in negated and "Pneumothorax" in negated and rng.random() < 0.5:
        negated = [n for n in negated if n not in ("Pleural Effusion", "Pneumothorax")]
        sentences.append(_pick(rng, ("No pleural effusion or pneumothorax.", "There is no pleural effusion or "
                                     "pneumothorax.")))
    sentences.extend(_pick(rng, _NEGATIONS[n]) for n in negated)
    if "Cardiomegaly" not in present and "Edema" not in present and rng.random() < 0.4:
        sentences.append(_pick(rng, ("The mediastinal and hilar contours are unremarkable.",
                                     "Mediastinal contours are within normal limits.")))
    if rng.random() < 0.4:
        sentences.append(_pick(rng, ("No acute osseous abnormality.", "The visualized osseous structures are intact.")))

    if not findings:
        impression = [_pick(rng, _IMPRESSION_NORMAL)]
    else:
        impression = []
        for f in sorted(findings, key=lambda f: order[f["name"]]):
            extra = _pick(rng, _IMPRESSION_EXTRA.get(f["name"], ("",)))
            impression.append(_cap(f["phrase"]) + extra + ".")
        if len(impression) > 1 and rng.random() < 0.3:
            impression = [f"{i + 1}. {s}" for i, s in enumerate(impression)]
    findings_text = " ".join(sentences)
    impression_text = " ".join(impression)
    return f"FINDINGS: {findings_text}\n\nIMPRESSION: {impression_text}", findings_text, impression_text
