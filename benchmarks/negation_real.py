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
Negation handling measured on real radiology reports: the 3955 IU X-ray (Open-i) reports that the
``torchxrayvision`` wheel ships (``data/NLMCXR_reports.tgz``; ``pip install --no-deps torchxrayvision``).

For each report with a FINDINGS or IMPRESSION section and each of 9 findings, a finding counts as *stated* when one
of its fixed terms (:data:`FINDING_TERMS`) appears in the text that survives negation handling; the truth is the
report's MeSH ``<major>`` tags (:data:`FINDING_MESH`). Methods, on the same reports in one run:

- ``keyword``: term presence in the raw FINDINGS + IMPRESSION, no negation handling;
- ``ours:<mode>``: ``clean_report`` -> ``NegationFilter(mode)`` -> terms in the surviving sentences, for the modes
  given with ``--modes`` (default: ``drop`` and ``drop_mentions``);
- ``medspacy``: medspaCy's ConText (``pip install medspacy``; skipped with a note when absent), one ``TargetRule``
  per term, a finding counts when one of its entities is not ``is_negated``.

Held-out evaluation is on the even-numbered report files (``--split even``, the default); the rules were developed on
the odd-numbered ones (``--split odd``). Prints per-finding precision / recall / F1 and the macro F1.

Usage::

    python benchmarks/negation_real.py [--split even|odd|all] [--modes drop drop_mentions] [--no-medspacy]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import sys
import tarfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from monai_afloc.transforms.text import NegationFilter, clean_report  # noqa: E402

#: finding -> MeSH major-tag heads that make it true
FINDING_MESH: dict[str, tuple[str, ...]] = {
    "pleural effusion": ("Pleural Effusion",),
    "pneumothorax": ("Pneumothorax", "Hydropneumothorax", "Hemopneumothorax"),
    "cardiomegaly": ("Cardiomegaly",),
    "pulmonary edema": ("Pulmonary Edema",),
    "consolidation": ("Consolidation",),
    "atelectasis": ("Pulmonary Atelectasis",),
    "nodule": ("Nodule",),
    "pneumonia": ("Pneumonia",),
    "emphysema": ("Emphysema", "Pulmonary Emphysema", "Bullous Emphysema"),
}

#: finding -> the fixed terms whose presence states it (the same for every method)
FINDING_TERMS: dict[str, tuple[str, ...]] = {
    "pleural effusion": ("effusion", "effusions"),
    "pneumothorax": ("pneumothorax", "pneumothoraces"),
    "cardiomegaly": ("cardiomegaly",),
    "pulmonary edema": ("edema",),
    "consolidation": ("consolidation", "consolidations"),
    "atelectasis": ("atelectasis", "atelectatic"),
    "nodule": ("nodule", "nodules"),
    "pneumonia": ("pneumonia",),
    "emphysema": ("emphysema", "emphysematous"),
}

_TERM_RE = {f: re.compile(r"\b(?:" + "|".join(terms) + r")\b") for f, terms in FINDING_TERMS.items()}


def find_torchxrayvision_data() -> str | None:
    """The ``torchxrayvision/data`` folder of the installed wheel, found without importing the package."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return folder if os.path.isdir(folder) else None


def load_iu_reports(tgz: str) -> list[dict]:
    """``[{"number": int, "text": FINDINGS + IMPRESSION, "mesh": set of major-tag heads}]``, reports with text."""
    reports = []
    with tarfile.open(tgz) as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".xml"):
                continue
            root = ET.parse(io.BytesIO(tar.extractfile(member).read())).getroot()
            sections = {a.get("Label"): (a.text or "").strip() for a in root.iter("AbstractText")}
            text = " ".join(t for t in (sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")) if t)
            if not text:
                continue
            mesh = {(m.text or "").split("/")[0].strip() for m in root.iter("major")}
            number = int(os.path.splitext(os.path.basename(member.name))[0])
            reports.append({"number": number, "text": text, "mesh": mesh})
    reports.sort(key=lambda r: r["number"])
    return reports


def stated(text: str) -> set[str]:
    low = text.lower()
    return {f for f, regex in _TERM_RE.items() if regex.search(low)}


def truth(report: dict) -> set[str]:
    return {f for f, heads in FINDING_MESH.items() if report["mesh"] & set(heads)}


def ours(mode: str):
    flt = NegationFilter(mode)

    def predict(text: str) -> set[str]:
        return stated(" . ".join(flt(clean_report(text, allow_empty=True))))

    return predict


def medspacy_predictor():
    if importlib.util.find_spec("medspacy") is None:
        return None
    try:  # medspaCy logs DEBUG lines through loguru
        from loguru import logger

        logger.remove()
    except ImportError:
        pass
    import medspacy
    from medspacy.ner import TargetRule

    nlp = medspacy.load()
    matcher = nlp.get_pipe("medspacy_target_matcher")
    matcher.add([TargetRule(term, finding.upper()) for finding, terms in FINDING_TERMS.items() for term in terms])

    def predict(text: str) -> set[str]:
        doc = nlp(text)
        return {ent.label_.lower() for ent in doc.ents if not ent._.is_negated}

    return predict


def scores(predictions: list[set[str]], truths: list[set[str]]) -> dict[str, tuple[float, float, float]]:
    out = {}
    for f in FINDING_TERMS:
        tp = sum(f in p and f in t for p, t in zip(predictions, truths))
        fp = sum(f in p and f not in t for p, t in zip(predictions, truths))
        fn = sum(f not in p and f in t for p, t in zip(predictions, truths))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[f] = (precision, recall, f1)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("even", "odd", "all"), default="even")
    parser.add_argument("--modes", nargs="+", default=["drop", "drop_mentions"])
    parser.add_argument("--no-medspacy", action="store_true")
    args = parser.parse_args(argv)
    data = find_torchxrayvision_data()
    if data is None:
        raise SystemExit("torchxrayvision is not installed: pip install --no-deps torchxrayvision")
    reports = load_iu_reports(os.path.join(data, "NLMCXR_reports.tgz"))
    if args.split != "all":
        parity = 0 if args.split == "even" else 1
        reports = [r for r in reports if r["number"] % 2 == parity]
    truths = [truth(r) for r in reports]
    methods = {"keyword": stated, **{f"ours:{m}": ours(m) for m in args.modes}}
    if not args.no_medspacy:
        predictor = medspacy_predictor()
        if predictor is None:
            print("medspacy is not installed (pip install medspacy): its column is left out")
        else:
            methods["medspacy"] = predictor
    print(f"{len(reports)} IU X-ray reports with FINDINGS or IMPRESSION, split={args.split}")
    results, macro = {}, {}
    for name, predict in methods.items():
        t0 = time.perf_counter()
        results[name] = scores([predict(r["text"]) for r in reports], truths)
        macro[name] = sum(f1 for _, _, f1 in results[name].values()) / len(results[name])
        print(f"  {name}: {time.perf_counter() - t0:.1f} s")
    header = f"{'finding':18s} {'n':>4s} " + " ".join(f"{name:>22s}" for name in methods)
    print(header + "\n" + " " * 24 + " ".join(f"{'P / R / F1':>22s}" for _ in methods))
    for f in FINDING_TERMS:
        n = sum(f in t for t in truths)
        cells = " ".join("{:>22s}".format("%.2f / %.2f / %.3f" % results[name][f]) for name in methods)
        print(f"{f:18s} {n:4d} {cells}")
    print(f"{'macro F1':23s} " + " ".join(f"{macro[name]:>22.3f}" for name in methods))
    return macro


if __name__ == "__main__":
    main()
