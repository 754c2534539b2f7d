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
Rule-based negation detection for radiology report sentences (NegEx-style, our own small rule set).

A sentence is read as lowercase ``\\w+`` tokens (the same tokens as :func:`monai_afloc.transforms.text.clean_report`
keeps, so it works on cleaned and on raw sentences alike). Trigger phrases are matched greedily, longest first, left
to right. Their kinds:

- *pre-negation* (``no``, ``without``, ``there is no``, ``no evidence of``, ``absence of``, ...): negate the words
  after them;
- *post-negation* (``not seen``, ``not identified``, ``resolved``, ``has cleared``, ``ruled out``, ...): negate the
  words before them;
- *two-sided* (``not``; ``negative for``, ``free of``, ``clear of``): negate the words on both sides ("the heart is
  not enlarged"; "lungs are clear of consolidation");
- *pseudo-triggers* (``no change``, ``no interval change``, ``cannot be excluded``, ``not ruled out``, ...): look
  like negations but are not; their words count as an affirmed statement;
- *scope stops* (``and``): end the scope of the trigger before them and of the trigger after them;
- *terminators* (``but``, ``however``, ``although``, ``except``, ``aside from``, ...): split the sentence into
  clauses; no scope crosses them.

Filler words (articles, copulas, ``there``, ``evidence``, ``of``, ``seen``, section headers such as ``impression``,
...; see :data:`NEGATION_FILLER`) never count as content and are stripped from the edges of a finding.

A clause is negated when it holds at least one real trigger with a non-empty finding and every content word of the
clause lies in some negation scope. A sentence is negated when at least one clause is negated and every clause with
content is negated: "no effusion but a small pneumothorax" and "heart size is normal and there is no effusion" are
*not* negated (they also affirm something), so dropping negated sentences never drops an affirmed finding.

At the *mention level* (:func:`mention_states`, :func:`remove_negated_mentions`, :func:`mark_negated_mentions`, the
``"drop_mentions"``/``"mark_mentions"`` modes) the same scopes mark stretches of a sentence as negated, and
uncertainty cues (``possible``, ``may represent``, ``cannot be excluded``, ...) mark a third state, *uncertain*, kept
apart from negation: "the lungs are clear without effusion" keeps "the lungs are clear" and drops the rest. The
de-identification token ``XXXX`` of public report collections (IU X-ray / Open-i) is a filler word: "no XXXX of
effusion" is negated. Measured on the real IU X-ray reports by ``benchmarks/negation_real.py``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from typing import NamedTuple

from monai.utils import StrEnum

__all__ = [
    "NegationMode",
    "NEGATION_PRE_TRIGGERS",
    "NEGATION_POST_TRIGGERS",
    "NEGATION_TWO_SIDED_TRIGGERS",
    "NEGATION_PSEUDO_TRIGGERS",
    "NEGATION_TERMINATORS",
    "NEGATION_SCOPE_STOPS",
    "NEGATION_FILLER",
    "MentionState",
    "UNCERTAINTY_PRE_TRIGGERS",
    "UNCERTAINTY_POST_TRIGGERS",
    "UNCERTAINTY_PSEUDO_TRIGGERS",
    "is_negated",
    "negated_findings",
    "canonical_negation",
    "mention_states",
    "remove_negated_mentions",
    "mark_negated_mentions",
]


class NegationMode(StrEnum):
    """
    What :class:`monai_afloc.transforms.text.NegationFilter` does with a negated sentence.

    - ``DROP``: remove it from the sentence list.
    - ``MARK``: rewrite it to its canonical negated form (see :func:`canonical_negation`).
    - ``KEEP``: leave it as it is (the filter is a no-op; handy to switch the filter off in a config).
    - ``DROP_MENTIONS``: mention level: remove each negated finding (with its trigger) from its sentence and keep the
      affirmed rest ("the lungs are clear without effusion" -> "the lungs are clear"); a sentence left without
      content is removed (see :func:`remove_negated_mentions`).
    - ``MARK_MENTIONS``: mention level: rewrite each negated finding in place to ``"no <finding>"`` and keep the rest
      (see :func:`mark_negated_mentions`).

    ``DROP``/``MARK`` work on whole sentences: a sentence that also affirms something is kept whole.
    """

    DROP = "drop"
    MARK = "mark"
    KEEP = "keep"
    DROP_MENTIONS = "drop_mentions"
    MARK_MENTIONS = "mark_mentions"


class MentionState(StrEnum):
    """The state of a stretch of a sentence at the mention level (see :func:`mention_states`)."""

    AFFIRMED = "affirmed"
    NEGATED = "negated"
    UNCERTAIN = "uncertain"


_SEEN_VERBS = (
    "seen",
    "identified",
    "visualized",
    "visualised",
    "demonstrated",
    "appreciated",
    "present",
    "evident",
    "noted",
    "detected",
    "visible",
    "apparent",
)
_CHANGE_WORDS = ("change", "changes", "increase", "decrease")

#: phrases that negate the words after them
NEGATION_PRE_TRIGGERS: tuple[str, ...] = (
    "no",
    "nor",
    "neither",
    "without",
    "there is no",
    "there are no",
    "there was no",
    "there were no",
    "no evidence of",
    "no evidence for",
    "no radiographic evidence of",
    "no sign of",
    "no signs of",
    "without evidence of",
    "without signs of",
    "absence of",
    "resolution of",
    "interval resolution of",
    "complete resolution of",
)

#: phrases that negate the words before them
NEGATION_POST_TRIGGERS: tuple[str, ...] = (
    *(f"not {v}" for v in _SEEN_VERBS),
    *(f"no longer {v}" for v in _SEEN_VERBS),
    "resolved",
    "has resolved",
    "have resolved",
    "cleared",
    "has cleared",
    "have cleared",
    "absent",
    "ruled out",
    "excluded",
    "removed",
)

#: phrases that negate the words on both sides; value: whether the words before belong to the finding
NEGATION_TWO_SIDED_TRIGGERS: dict[str, bool] = {
    "not": True,
    "no longer": True,
    "negative for": False,
    "free of": False,
    "clear of": False,
}

#: phrases that look like negations but are not (changes, uncertainty)
NEGATION_PSEUDO_TRIGGERS: tuple[str, ...] = (
    *(f"no {c}" for c in _CHANGE_WORDS),
    *(f"no interval {c}" for c in _CHANGE_WORDS),
    *(f"no significant {c}" for c in _CHANGE_WORDS),
    *(f"no significant interval {c}" for c in _CHANGE_WORDS),
    *(f"no substantial {c}" for c in _CHANGE_WORDS),
    "without change",
    "without interval change",
    "without significant change",
    "not changed",
    "not significantly changed",
    "not only",
    "not necessarily",
    "not excluded",
    "not be excluded",
    "cannot be excluded",
    "cannot exclude",
    "not exclude",
    "not ruled out",
    "not be ruled out",
    "cannot be ruled out",
    "cannot rule out",
    "not rule out",
    "not definitively",
    "not determined",
)

#: phrases that end every scope: the sentence is split into clauses at them
NEGATION_TERMINATORS: tuple[str, ...] = (
    "but",
    "however",
    "although",
    "though",
    "except",
    "whereas",
    "yet",
    "nevertheless",
    "aside from",
    "apart from",
    "other than",
    "with the exception of",
    "secondary to",
    "due to",
)

#: words that end the scope of the trigger before them and of the trigger after them
NEGATION_SCOPE_STOPS: tuple[str, ...] = ("and",)

#: words that never count as content and are stripped from the edges of a finding
NEGATION_FILLER: frozenset[str] = frozenset(
    (
        "a an the any is are was were be been being has have had there this that these those it "
        "evidence sign signs of for to and or nor either now again currently also "
        "findings impression conclusion summary"  # section headers that cleaning glues to the first sentence
        " xxxx"  # the de-identification token of the IU X-ray (Open-i) reports, which also hides common words
    ).split()
    + list(_SEEN_VERBS)
)

_PRE, _POST, _BOTH, _BOTH_AFTER, _PSEUDO, _STOP, _TERM = range(7)
_FORWARD = (_PRE, _BOTH, _BOTH_AFTER)  # kinds whose scope covers the words after them
_BACKWARD = (_POST, _BOTH, _BOTH_AFTER)  # kinds whose scope covers the words before them
_REAL = (_PRE, _POST, _BOTH, _BOTH_AFTER)


def _build_kinds() -> dict[str, int]:
    kinds: dict[str, int] = {}
    groups: list[tuple[Iterable[str], int]] = [
        (NEGATION_PRE_TRIGGERS, _PRE),
        (NEGATION_POST_TRIGGERS, _POST),
        ((k for k, before in NEGATION_TWO_SIDED_TRIGGERS.items() if before), _BOTH),
        ((k for k, before in NEGATION_TWO_SIDED_TRIGGERS.items() if not before), _BOTH_AFTER),
        (NEGATION_PSEUDO_TRIGGERS, _PSEUDO),
        (NEGATION_SCOPE_STOPS, _STOP),
        (NEGATION_TERMINATORS, _TERM),
    ]
    for phrases, kind in groups:
        for phrase in phrases:
            if phrase in kinds:
                raise RuntimeError(f"negation rule {phrase!r} is listed twice.")
            kinds[phrase] = kind
    return kinds


_KINDS = _build_kinds()
# longest phrase first, so that the regex alternation picks the longest trigger starting at a token
_TRIGGER_RE = re.compile(
    r"\b(?:" + "|".join(re.escape(p) for p in sorted(_KINDS, key=lambda p: (-len(p.split()), -len(p)))) + r")\b"
)
_WORD_RE = re.compile(r"\w+")


class _Event(NamedTuple):
    start: int  # first token index
    end: int  # one past the last token index
    kind: int


class _Analysis(NamedTuple):
    negated: bool
    findings: list[str]


def _strip_filler(words: list[str], strip: frozenset[str] = NEGATION_FILLER) -> list[str]:
    """``words`` without the words of ``strip`` at either edge."""
    lo, hi = 0, len(words)
    while lo < hi and words[lo] in strip:
        lo += 1
    while hi > lo and words[hi - 1] in strip:
        hi -= 1
    return words[lo:hi]


def _analyse_clause(tokens: list[str], start: int, stop: int, events: list[_Event]) -> tuple[bool, bool, list[str]]:
    """Returns (has_content, negated, findings) of the clause ``tokens[start:stop]`` with its trigger ``events``."""
    has_content = False
    all_covered = True
    findings: list[str] = []
    # the finding words collected for each real trigger: before / after it
    before: dict[int, list[str]] = {}
    after: dict[int, list[str]] = {}
    for i in range(len(events) + 1):
        left = events[i - 1] if i > 0 else None
        right = events[i] if i < len(events) else None
        gap = _strip_filler(tokens[(left.end if left else start) : (right.start if right else stop)])
        if not gap:
            continue
        has_content = True
        covered = False
        if left is not None and left.kind in _FORWARD:
            after[i - 1] = gap
            covered = True
        if right is not None and right.kind in _BACKWARD:
            before[i] = gap
            covered = True
        all_covered = all_covered and covered
    for j, ev in enumerate(events):
        if ev.kind == _PSEUDO:  # a pseudo-trigger is an affirmed statement
            has_content, all_covered = True, False
        if ev.kind not in _REAL:
            continue
        words = (before.get(j, []) if ev.kind in (_POST, _BOTH) else []) + after.get(j, [])
        if words:
            findings.append(" ".join(words))
    return has_content, bool(findings) and all_covered, findings


def _analyse(sentence: str) -> _Analysis:
    if not isinstance(sentence, str):
        raise TypeError(f"a sentence must be a str, got {type(sentence).__name__}.")
    tokens = _WORD_RE.findall(sentence.lower())
    if not tokens:
        return _Analysis(False, [])
    starts = [0]
    for tok in tokens[:-1]:
        starts.append(starts[-1] + len(tok) + 1)
    normalized = " ".join(tokens)
    events = [
        _Event(bisect.bisect_right(starts, m.start()) - 1, bisect.bisect_left(starts, m.end()), _KINDS[m.group(0)])
        for m in _TRIGGER_RE.finditer(normalized)
    ]
    clause_start, clause_events = 0, []
    n_negated, n_affirmed, findings = 0, 0, []
    for ev in events + [_Event(len(tokens), len(tokens), _TERM)]:
        if ev.kind != _TERM:
            clause_events.append(ev)
            continue
        has_content, negated, clause_findings = _analyse_clause(tokens, clause_start, ev.start, clause_events)
        findings.extend(clause_findings)
        n_negated += int(negated)
        n_affirmed += int(has_content and not negated)
        clause_start, clause_events = ev.end, []
    unique = list(dict.fromkeys(findings))
    return _Analysis(n_negated > 0 and n_affirmed == 0, unique)


def is_negated(sentence: str) -> bool:
    """
    Whether ``sentence`` only states the absence of findings (see the module docstring for the rules).

    Args:
        sentence: one report sentence (cleaned or raw).

    Raises:
        TypeError: when ``sentence`` is not a str.

    Example::

        >>> is_negated("there is no pleural effusion"), is_negated("pneumothorax is not seen")
        (True, True)
        >>> is_negated("small left pleural effusion"), is_negated("no effusion but a small pneumothorax")
        (False, False)
    """
    return _analyse(sentence).negated


def negated_findings(sentence: str) -> list[str]:
    """
    The findings that ``sentence`` negates, in order, without duplicates, filler words stripped from their edges.
    A sentence that also affirms something still reports its negated findings.

    Raises:
        TypeError: when ``sentence`` is not a str.

    Example::

        >>> negated_findings("there is no evidence of pleural effusion or pneumothorax")
        ['pleural effusion or pneumothorax']
        >>> negated_findings("no effusion but a small pneumothorax")
        ['effusion']
    """
    return _analyse(sentence).findings


def canonical_negation(sentence: str) -> str:
    """
    The canonical form of a negated sentence: ``"no <finding>"`` for each negated finding, joined with ``" and "``
    (lowercase, no punctuation). A sentence that is not negated (:func:`is_negated`) is returned unchanged. The
    rewrite is idempotent: the canonical form of a canonical form is itself.

    Raises:
        TypeError: when ``sentence`` is not a str.

    Example::

        >>> canonical_negation("Pneumothorax is not seen.")
        'no pneumothorax'
        >>> canonical_negation("the heart is not enlarged and there is no evidence of effusion")
        'no heart enlarged and no effusion'
        >>> canonical_negation("small left pleural effusion")
        'small left pleural effusion'
    """
    analysis = _analyse(sentence)
    if not analysis.negated:
        return sentence
    return " and ".join(f"no {f}" for f in analysis.findings)


# --------------------------------------------------------------------------------------------------------------------
# Mention level: which stretch of a sentence is affirmed, negated or uncertain
# --------------------------------------------------------------------------------------------------------------------

#: phrases that make the words after them uncertain (a third state, apart from negation)
UNCERTAINTY_PRE_TRIGGERS: tuple[str, ...] = (
    "possible",
    "possibly",
    "questionable",
    "question of",
    "question",
    "suspicious for",
    "suspected",
    "concerning for",
    "worrisome for",
    "may represent",
    "may reflect",
    "may be",
    "might represent",
    "could represent",
    "could be",
    "could reflect",
    "could indicate",
    "may indicate",
    "suggestive of",
    "suggest",
    "suggests",
    "suggesting",
    "differential diagnosis",
    "differential diagnosis is",
    "may",
    "cannot exclude",
    "can not exclude",
    "not exclude",
    "cannot rule out",
    "can not rule out",
    "not rule out",
    "rule out",
    "equivocal for",
    "versus",
    "vs",
    "differential includes",
    "differential diagnosis includes",
    "correlate for",
    "correlate clinically for",
    "clinical correlation for",
    "evaluation of",
    "evaluate for",
)

#: phrases that make the words before them uncertain
UNCERTAINTY_POST_TRIGGERS: tuple[str, ...] = (
    "not excluded",
    "not be excluded",
    "cannot be excluded",
    "can not be excluded",
    "not entirely excluded",
    "not ruled out",
    "not be ruled out",
    "cannot be ruled out",
    "can not be ruled out",
    "is possible",
    "are possible",
    "is suspected",
    "are suspected",
    "difficult to exclude",
    "difficult to entirely exclude",
    "in the differential",
)

#: phrases that look like uncertainty cues but affirm ("strongly suggestive of pneumonia")
UNCERTAINTY_PSEUDO_TRIGGERS: tuple[str, ...] = ("strongly suggestive of", "most suggestive of", "most likely")

# phrases that end no scope at the mention level: "atelectasis and or effusion", "could be due to effusion"
_MENTION_CONTINUATIONS: tuple[str, ...] = ("and or", "due to", "secondary to")

_UPRE, _UPOST, _CONTINUE = 7, 8, 9
# connectives stripped from the edges of what is left of a sentence after negated mentions are removed
_EDGE_WORDS = frozenset("and or nor with but however although though whereas yet which that".split())


def _build_mention_kinds() -> dict[str, int]:
    uncertain = set(UNCERTAINTY_PRE_TRIGGERS) | set(UNCERTAINTY_POST_TRIGGERS)
    kinds = {
        p: k for p, k in _KINDS.items() if not (k == _PSEUDO and p in uncertain) and p not in _MENTION_CONTINUATIONS
    }
    for phrases, kind in (
        (UNCERTAINTY_PRE_TRIGGERS, _UPRE),
        (UNCERTAINTY_POST_TRIGGERS, _UPOST),
        (UNCERTAINTY_PSEUDO_TRIGGERS, _PSEUDO),
        (_MENTION_CONTINUATIONS, _CONTINUE),
    ):
        for phrase in phrases:
            if phrase in kinds:
                raise RuntimeError(f"uncertainty rule {phrase!r} is also a negation rule.")
            kinds[phrase] = kind
    return kinds


def _trigger_regex(kinds: dict[str, int]) -> re.Pattern:
    # longest phrase first, so that the regex alternation picks the longest trigger starting at a token
    ordered = sorted(kinds, key=lambda p: (-len(p.split()), -len(p)))
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in ordered) + r")\b")


_MENTION_KINDS = _build_mention_kinds()
_MENTION_RE = _trigger_regex(_MENTION_KINDS)


def _tokens_and_events(sentence: str, regex: re.Pattern, kinds: dict[str, int]) -> tuple[list[str], list[_Event]]:
    if not isinstance(sentence, str):
        raise TypeError(f"a sentence must be a str, got {type(sentence).__name__}.")
    tokens = _WORD_RE.findall(sentence.lower())
    if not tokens:
        return tokens, []
    starts = [0]
    for tok in tokens[:-1]:
        starts.append(starts[-1] + len(tok) + 1)
    events = [
        _Event(bisect.bisect_right(starts, m.start()) - 1, bisect.bisect_left(starts, m.end()), kinds[m.group(0)])
        for m in regex.finditer(" ".join(tokens))
    ]
    return tokens, events


def _token_states(sentence: str) -> tuple[list[str], list[MentionState], list[bool]]:
    """Per token: its state and whether it belongs to a negation trigger."""
    tokens, events = _tokens_and_events(sentence, _MENTION_RE, _MENTION_KINDS)
    events = [e for e in events if e.kind != _CONTINUE]
    states = [MentionState.AFFIRMED] * len(tokens)
    is_trigger = [False] * len(tokens)
    clause_start, clause_events = 0, []
    for ev in events + [_Event(len(tokens), len(tokens), _TERM)]:
        if ev.kind != _TERM:
            clause_events.append(ev)
            continue
        # an uncertainty cue inside a negation scope does not end it ("no findings to suggest pneumonia"): the
        # negation scopes are found on the clause's events without the cues, the uncertainty scopes on all of them
        negations = [e for e in clause_events if e.kind not in (_UPRE, _UPOST)]
        for events_, kinds_, state in (
            (clause_events, ((_UPRE,), (_UPOST,)), MentionState.UNCERTAIN),
            (negations, (_FORWARD, _BACKWARD), MentionState.NEGATED),
        ):
            forward, backward = kinds_
            for i in range(len(events_) + 1):
                left = events_[i - 1] if i > 0 else None
                right = events_[i] if i < len(events_) else None
                if (left is not None and left.kind in forward) or (right is not None and right.kind in backward):
                    lo = left.end if left else clause_start
                    hi = right.start if right else ev.start
                    states[lo:hi] = [state] * (hi - lo)
            for e in events_:
                if e.kind in forward or e.kind in backward:
                    states[e.start : e.end] = [state] * (e.end - e.start)
                    is_trigger[e.start : e.end] = [state == MentionState.NEGATED] * (e.end - e.start)
        clause_start, clause_events = ev.end, []
    return tokens, states, is_trigger


def mention_states(sentence: str) -> list[tuple[str, MentionState]]:
    """
    A sentence at the mention level: its lowercase ``\\w+`` tokens in runs of the same
    :class:`MentionState`, as ``(text, state)`` pairs in order. Negated runs include their trigger words;
    uncertain runs include their cue words ("possible", "cannot be excluded", ...). The negation rules are the
    sentence-level ones (module docstring); the scope of a trigger is the stretch of words up to the next trigger,
    ``and`` or clause boundary. Uncertainty cues (:data:`UNCERTAINTY_PRE_TRIGGERS`,
    :data:`UNCERTAINTY_POST_TRIGGERS`) work the same way; negation wins where both reach.

    Raises:
        TypeError: when ``sentence`` is not a str.

    Example::

        >>> [(text, state.value) for text, state in mention_states("lungs are clear without effusion or pneumothorax")]
        [('lungs are clear', 'affirmed'), ('without effusion or pneumothorax', 'negated')]
        >>> [(text, state.value) for text, state in mention_states("opacity, pneumonia cannot be excluded")]
        [('opacity pneumonia cannot be excluded', 'uncertain')]
    """
    tokens, states, _ = _token_states(sentence)
    runs: list[tuple[str, MentionState]] = []
    lo = 0
    for i in range(1, len(tokens) + 1):
        if i == len(tokens) or states[i] != states[lo]:
            runs.append((" ".join(tokens[lo:i]), states[lo]))
            lo = i
    return runs


def _check_keep_uncertain(keep_uncertain: object) -> bool:
    if not isinstance(keep_uncertain, bool):
        raise TypeError(f"keep_uncertain must be a bool, got {type(keep_uncertain).__name__}.")
    return keep_uncertain


def remove_negated_mentions(sentence: str, keep_uncertain: bool = False) -> str:
    """
    The sentence with each negated finding and its trigger removed, the affirmed rest kept (lowercase words, single
    spaces, connectives and filler stripped from the edges). ``""`` when nothing with content is left.

    Args:
        sentence: one report sentence (cleaned or raw).
        keep_uncertain: keep uncertain findings ("possible pneumonia", "effusion cannot be excluded"); by default they
            are removed with the negated ones (only affirmed findings are left).

    Raises:
        TypeError: when ``sentence`` is not a str or ``keep_uncertain`` not a bool.

    Example::

        >>> remove_negated_mentions("the lungs are clear without effusion or pneumothorax")
        'the lungs are clear'
        >>> remove_negated_mentions("no effusion but a small right pneumothorax")
        'a small right pneumothorax'
        >>> remove_negated_mentions("there is no pneumothorax")
        ''
    """
    keep_uncertain = _check_keep_uncertain(keep_uncertain)
    tokens, states, _ = _token_states(sentence)
    dropped = {MentionState.NEGATED} if keep_uncertain else {MentionState.NEGATED, MentionState.UNCERTAIN}
    kept = _strip_filler([t for t, s in zip(tokens, states) if s not in dropped], _EDGE_WORDS)
    return " ".join(kept) if _strip_filler(kept) else ""


def mark_negated_mentions(sentence: str, keep_uncertain: bool = False) -> str:
    """
    The sentence with each negated finding rewritten in place to ``"no <finding>"`` (its trigger and filler words
    removed), the rest kept (lowercase words, single spaces). ``""`` when nothing with content is left.

    Args:
        sentence: one report sentence (cleaned or raw).
        keep_uncertain: keep uncertain findings ("possible pneumonia"); by default they are removed.

    Raises:
        TypeError: when ``sentence`` is not a str or ``keep_uncertain`` not a bool.

    Example::

        >>> mark_negated_mentions("the lungs are clear without effusion or pneumothorax")
        'the lungs are clear no effusion or pneumothorax'
        >>> mark_negated_mentions("pneumothorax is not seen")
        'no pneumothorax'
    """
    keep_uncertain = _check_keep_uncertain(keep_uncertain)
    tokens, states, is_trigger = _token_states(sentence)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and states[j] == states[i]:
            j += 1
        if states[i] == MentionState.NEGATED:
            finding = _strip_filler([t for t, trig in zip(tokens[i:j], is_trigger[i:j]) if not trig])
            if finding:
                out.extend(["no", *finding])
        elif keep_uncertain or states[i] != MentionState.UNCERTAIN:
            out.extend(tokens[i:j])
        i = j
    out = _strip_filler(out, _EDGE_WORDS)
    return " ".join(out) if _strip_filler(out) else ""
