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

"""Report (text) transforms for AFLoc: cleaning, sentence sampling, joining, tokenizing, negation handling, laterality
swapping."""

from __future__ import annotations

from .array import (
    LATERALITY_PAIRS,
    TOKENIZER_KEYS,
    JoinSentences,
    NegationFilter,
    RandSentenceSample,
    ReportToSentences,
    SwapLaterality,
    TokenizeText,
    clean_report,
)
from .dictionary import (
    JoinSentencesd,
    JoinSentencesD,
    JoinSentencesDict,
    NegationFilterd,
    NegationFilterD,
    NegationFilterDict,
    RandSentenceSampled,
    RandSentenceSampleD,
    RandSentenceSampleDict,
    ReportToSentencesd,
    ReportToSentencesD,
    ReportToSentencesDict,
    SwapLateralityd,
    SwapLateralityD,
    SwapLateralityDict,
    TokenizeTextd,
    TokenizeTextD,
    TokenizeTextDict,
)
from .negation import (
    NEGATION_FILLER,
    NEGATION_POST_TRIGGERS,
    NEGATION_PRE_TRIGGERS,
    NEGATION_PSEUDO_TRIGGERS,
    NEGATION_SCOPE_STOPS,
    NEGATION_TERMINATORS,
    NEGATION_TWO_SIDED_TRIGGERS,
    UNCERTAINTY_POST_TRIGGERS,
    UNCERTAINTY_PRE_TRIGGERS,
    UNCERTAINTY_PSEUDO_TRIGGERS,
    MentionState,
    NegationMode,
    canonical_negation,
    is_negated,
    mark_negated_mentions,
    mention_states,
    negated_findings,
    remove_negated_mentions,
)

__all__ = [
    "TOKENIZER_KEYS",
    "clean_report",
    "ReportToSentences",
    "JoinSentences",
    "RandSentenceSample",
    "TokenizeText",
    "NegationFilter",
    "ReportToSentencesd",
    "ReportToSentencesD",
    "ReportToSentencesDict",
    "JoinSentencesd",
    "JoinSentencesD",
    "JoinSentencesDict",
    "RandSentenceSampled",
    "RandSentenceSampleD",
    "RandSentenceSampleDict",
    "TokenizeTextd",
    "TokenizeTextD",
    "TokenizeTextDict",
    "NegationFilterd",
    "NegationFilterD",
    "NegationFilterDict",
    "LATERALITY_PAIRS",
    "SwapLaterality",
    "SwapLateralityd",
    "SwapLateralityD",
    "SwapLateralityDict",
    "NegationMode",
    "NEGATION_PRE_TRIGGERS",
    "NEGATION_POST_TRIGGERS",
    "NEGATION_TWO_SIDED_TRIGGERS",
    "NEGATION_PSEUDO_TRIGGERS",
    "NEGATION_TERMINATORS",
    "NEGATION_SCOPE_STOPS",
    "NEGATION_FILLER",
    "is_negated",
    "negated_findings",
    "canonical_negation",
    "MentionState",
    "UNCERTAINTY_PRE_TRIGGERS",
    "UNCERTAINTY_POST_TRIGGERS",
    "UNCERTAINTY_PSEUDO_TRIGGERS",
    "mention_states",
    "remove_negated_mentions",
    "mark_negated_mentions",
]
