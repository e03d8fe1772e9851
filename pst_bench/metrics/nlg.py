"""Offline corpus metrics for the GPT-2 data-to-text tasks (E2E, DART, WebNLG; paper Table 3).

``compute_nlg_metrics(hypotheses, references)`` scores one system output
against a variable number of references per hypothesis:

| key            | implementation                                    | scale |
| -------------- | ------------------------------------------------- | ----- |
| ``bleu``       | sacrebleu ``BLEU`` (corpus, 13a tokens, exp smoothing) | 0-100, as sacrebleu reports |
| ``ter``        | sacrebleu ``TER`` (corpus, tercom tokens)          | 0-100, as sacrebleu reports |
| ``ter_fraction`` | the same TER / 100                               | 0-1, as the paper prints it (0.46) |
| ``nist``       | ``nltk.translate.nist_score.corpus_nist``, n=5      | unbounded, about 0-15 |
| ``meteor``     | ``nltk.translate.meteor_score.meteor_score``, sentence mean | 0-1 (the paper prints E2E x100) |
| ``rouge_l``    | ``rouge_score`` ROUGE-L F1, best reference, mean over sentences | 0-1 |

NIST, METEOR and ROUGE-L see the same tokens: sacrebleu's 13a tokenizer (the
mteval-v13a tokenisation the official E2E/NIST scripts use), so no nltk
tokenizer (and no punkt download) is involved. METEOR needs WordNet, built
offline by :mod:`pst_bench.install.wordnet`.

``metric_settings`` returns what produced each number (library, version,
tokenisation, casing, n-gram order, sacrebleu signature), for results records.

CIDEr is not computed: the only maintained implementation on PyPI,
pycocoevalcap, is a 104 MB wheel (Java jars for its tokenizer, METEOR and
SPICE) that also requires pycocotools.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from pst_bench.errors import ConfigError

__all__ = ["DEFAULT_METRICS", "NIST_ORDER", "compute_nlg_metrics", "ensure_wordnet", "metric_settings"]

DEFAULT_METRICS = ("bleu", "nist", "meteor", "ter", "rouge_l")
# The official E2E script (mteval-v13a) reports NIST with n-grams up to 5.
NIST_ORDER = 5
# The tokenizer shared by NIST, METEOR and ROUGE-L; sacrebleu's BLEU default too.
TOKENIZER = "13a"

Hypotheses = list[str]
References = list[list[str]]


def compute_nlg_metrics(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    lowercase: bool = False,
) -> dict[str, float]:
    """Corpus scores of ``hypotheses`` against ``references`` (one list of references each).

    Reference lists may differ in length. ``lowercase`` folds case before
    BLEU, TER, NIST and ROUGE-L; nltk's METEOR always lowercases. Returns plain
    floats keyed as in the module docstring (``"ter"`` adds ``"ter_fraction"``).
    Raises ConfigError for an unknown metric name or for METEOR without WordNet.
    """
    names = _metric_names(metrics)
    hyps, refs = _validated_corpus(hypotheses, references)
    if "meteor" in names:
        ensure_wordnet()  # fail before spending time on the other metrics
    scores: dict[str, float] = {}
    for name in names:
        scores.update(_SCORERS[name](hyps, refs, lowercase))
    return scores


def metric_settings(
    metrics: Sequence[str] = DEFAULT_METRICS,
    lowercase: bool = False,
    references: Sequence[Sequence[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """How each metric of ``compute_nlg_metrics(..., metrics, lowercase)`` is computed.

    One JSON-safe dict per metric: ``outputs`` (the keys it produces),
    implementation, library and version, tokenisation, casing, n-gram order,
    scale and, for sacrebleu, its reproducibility signature. Pass the
    ``references`` that were scored to fill in sacrebleu's ``nrefs`` field
    (a count, or ``var`` for unequal counts); without them it is left out.
    """
    num_refs = None if references is None else _num_refs(references)
    return {name: _SETTINGS[name](lowercase, num_refs) for name in _metric_names(metrics)}


def ensure_wordnet() -> None:
    """Load nltk's WordNet (needed by METEOR) or raise ConfigError saying how to get it offline."""
    from pst_bench.install.wordnet import INSTALL_HINT, loaded_wordnet_root

    if _wordnet_root() is None and loaded_wordnet_root() is None:
        raise ConfigError(
            "METEOR needs nltk's WordNet corpus, which nltk cannot find (nltk.download is not "
            f"available offline): {INSTALL_HINT}."
        )


# --- input checks ---------------------------------------------------------------------------------


def _metric_names(metrics: Sequence[str]) -> list[str]:
    if isinstance(metrics, str):  # metrics="bleu" would otherwise iterate over letters
        metrics = [metrics]
    unknown = [name for name in metrics if name not in _SCORERS]
    if unknown:
        raise ConfigError(f"unknown NLG metric(s) {unknown}; choose from {list(_SCORERS)}.")
    return list(dict.fromkeys(metrics))  # keep order, drop repeats


def _validated_corpus(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[Hypotheses, References]:
    """Lists of strings, one non-empty reference list per hypothesis; ValueError otherwise."""
    hyps, refs = list(hypotheses), [list(r) if not isinstance(r, str) else r for r in references]
    if not hyps:
        raise ValueError("no hypotheses to score")
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference lists")
    for i, (hyp, ref_list) in enumerate(zip(hyps, refs)):
        if not isinstance(hyp, str):
            raise ValueError(f"hypothesis {i} is {type(hyp).__name__}, not str")
        if isinstance(ref_list, str) or not ref_list:
            raise ValueError(f"references[{i}] must be a non-empty list of strings, got {ref_list!r}")
        if not all(isinstance(ref, str) for ref in ref_list):
            raise ValueError(f"references[{i}] holds a non-string reference")
    return hyps, refs


def _num_refs(references: Sequence[Sequence[str]]) -> int:
    """References per hypothesis, or -1 (sacrebleu's code for a variable count)."""
    counts = {len(ref_list) for ref_list in references}
    return counts.pop() if len(counts) == 1 else -1


# --- sacrebleu: BLEU and TER ----------------------------------------------------------------------


def _reference_streams(refs: References) -> list[list[str | None]]:
    """sacrebleu's layout: stream j holds every hypothesis's j-th reference.

    Hypotheses with fewer references are padded with None, which sacrebleu
    drops per segment (metrics/base.py ``_cache_references``). An empty
    string would NOT be dropped: it would count as a zero-length reference
    (changing BLEU's closest reference length and TER's average one).
    """
    width = max(len(ref_list) for ref_list in refs)
    return [[ref_list[j] if j < len(ref_list) else None for ref_list in refs] for j in range(width)]


def _bleu_metric(lowercase: bool):
    from sacrebleu.metrics import BLEU

    # sacrebleu's defaults otherwise: 13a tokens, 4-grams, exp smoothing, no effective order.
    return BLEU(lowercase=lowercase, tokenize=TOKENIZER)


def _ter_metric(lowercase: bool):
    from sacrebleu.metrics import TER

    # sacrebleu's TER is case-insensitive by default; follow `lowercase` like every other metric.
    return TER(case_sensitive=not lowercase)


def _bleu(hyps: Hypotheses, refs: References, lowercase: bool) -> dict[str, float]:
    score = _bleu_metric(lowercase).corpus_score(hyps, _reference_streams(refs))
    return {"bleu": float(score.score)}


def _ter(hyps: Hypotheses, refs: References, lowercase: bool) -> dict[str, float]:
    score = _ter_metric(lowercase).corpus_score(hyps, _reference_streams(refs))
    return {"ter": float(score.score), "ter_fraction": float(score.score) / 100.0}


def _sacrebleu_signature(metric, num_refs: int | None) -> str:
    """sacrebleu's own signature string; ``nrefs`` is omitted when unknown."""
    metric.num_refs = num_refs  # what corpus_score would set; None makes the signature skip it
    return metric.get_signature().format()


# --- nltk: NIST and METEOR; rouge_score: ROUGE-L --------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tokenizer_13a() -> Callable[[str], str]:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def _tokens(text: str, lowercase: bool) -> list[str]:
    return _tokenizer_13a()(text.lower() if lowercase else text).split()


def _nist(hyps: Hypotheses, refs: References, lowercase: bool) -> dict[str, float]:
    from nltk.translate.nist_score import corpus_nist

    hyp_tokens = [_tokens(h, lowercase) for h in hyps]
    ref_tokens = [[_tokens(r, lowercase) for r in ref_list] for ref_list in refs]
    # nltk divides by the number of hypothesis n-grams of each order and fails
    # when no hypothesis is that long. mteval-v13a counts such an order as 0,
    # and the information weights of shorter n-grams do not depend on the
    # maximum order, so capping the order at the longest hypothesis gives
    # mteval's value instead of a ZeroDivisionError.
    order = min(NIST_ORDER, max(len(tokens) for tokens in hyp_tokens))
    value = corpus_nist(ref_tokens, hyp_tokens, n=order) if order > 0 else 0.0
    return {"nist": float(value)}


def _meteor(hyps: Hypotheses, refs: References, lowercase: bool) -> dict[str, float]:
    from nltk.translate.meteor_score import meteor_score

    # nltk's METEOR lowercases itself (preprocess=str.lower), so `lowercase` changes nothing here.
    values = [
        meteor_score([_tokens(r, False) for r in ref_list], _tokens(hyp, False)) for hyp, ref_list in zip(hyps, refs)
    ]
    return {"meteor": math.fsum(values) / len(values)}


class _RougeTokenizer:
    """13a tokens for rouge_score, instead of its default tokenizer.

    rouge_score's default lowercases and keeps only [a-z0-9] runs, which cuts
    non-ASCII names (WebNLG) apart and drops punctuation; the official E2E
    ROUGE-L scores the same tokens as its BLEU/NIST.
    """

    def __init__(self, lowercase: bool):
        self.lowercase = lowercase

    def tokenize(self, text: str) -> list[str]:
        return _tokens(text, self.lowercase)


def _rouge_l(hyps: Hypotheses, refs: References, lowercase: bool) -> dict[str, float]:
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], tokenizer=_RougeTokenizer(lowercase))
    values = [scorer.score_multi(ref_list, hyp)["rougeL"].fmeasure for hyp, ref_list in zip(hyps, refs)]
    return {"rouge_l": math.fsum(values) / len(values)}


_SCORERS: dict[str, Callable[[Hypotheses, References, bool], dict[str, float]]] = {
    "bleu": _bleu,
    "nist": _nist,
    "meteor": _meteor,
    "ter": _ter,
    "rouge_l": _rouge_l,
}


# --- settings -------------------------------------------------------------------------------------


def _library(name: str) -> dict[str, str]:
    return {"library": name, "version": metadata.version(name)}


def _bleu_settings(lowercase: bool, num_refs: int | None) -> dict[str, Any]:
    metric = _bleu_metric(lowercase)
    return {
        "outputs": ["bleu"],
        "implementation": "sacrebleu.metrics.BLEU.corpus_score",
        **_library("sacrebleu"),
        "signature": _sacrebleu_signature(metric, num_refs),
        "level": "corpus",
        "tokenisation": metric.tokenizer.signature(),
        "lowercase": bool(lowercase),
        "max_ngram_order": metric.max_ngram_order,
        "smoothing": metric.smooth_method,
        "scale": "0-100",
        "multi_reference": "n-gram counts clipped by the max over references; closest reference length",
    }


def _ter_settings(lowercase: bool, num_refs: int | None) -> dict[str, Any]:
    metric = _ter_metric(lowercase)
    return {
        "outputs": ["ter", "ter_fraction"],
        "implementation": "sacrebleu.metrics.TER.corpus_score",
        **_library("sacrebleu"),
        "signature": _sacrebleu_signature(metric, num_refs),
        "level": "corpus",
        "tokenisation": metric.tokenizer.signature(),
        "lowercase": bool(lowercase),
        "scale": "ter: 0-100 (sacrebleu); ter_fraction: 0-1 (= ter / 100, as the paper prints)",
        "multi_reference": "fewest edits over references / mean reference length (tercom)",
    }


def _nist_settings(lowercase: bool, num_refs: int | None) -> dict[str, Any]:
    return {
        "outputs": ["nist"],
        "implementation": "nltk.translate.nist_score.corpus_nist",
        **_library("nltk"),
        "level": "corpus",
        "tokenisation": f"sacrebleu {TOKENIZER}",
        "lowercase": bool(lowercase),
        "max_ngram_order": NIST_ORDER,
        "order_cap": "capped at the longest hypothesis (orders no hypothesis reaches add 0, as in mteval)",
        "scale": "unbounded (sum of information-weighted precisions x length penalty)",
    }


def _meteor_settings(lowercase: bool, num_refs: int | None) -> dict[str, Any]:
    from nltk.translate.meteor_score import meteor_score

    defaults = _keyword_defaults(meteor_score, ("alpha", "beta", "gamma"))
    return {
        "outputs": ["meteor"],
        "implementation": "nltk.translate.meteor_score.meteor_score",
        **_library("nltk"),
        "level": "sentence, mean over the corpus",
        "tokenisation": f"sacrebleu {TOKENIZER}",
        "lowercase": True,  # nltk's preprocess=str.lower, whatever `lowercase` says
        "matching": "exact, Porter stem, WordNet synonym",
        "parameters": defaults,
        "multi_reference": "best reference per sentence",
        "wordnet": _wordnet_info(),
        "scale": "0-1",
    }


def _rouge_l_settings(lowercase: bool, num_refs: int | None) -> dict[str, Any]:
    return {
        "outputs": ["rouge_l"],
        "implementation": "rouge_score.rouge_scorer.RougeScorer(['rougeL']).score_multi, F-measure",
        **_library("rouge-score"),
        "level": "sentence, mean over the corpus",
        "tokenisation": f"sacrebleu {TOKENIZER} (not rouge_score's default tokenizer)",
        "lowercase": bool(lowercase),
        "stemming": False,
        "multi_reference": "reference with the best F-measure per sentence",
        "scale": "0-1",
    }


def _keyword_defaults(function: Callable, names: Sequence[str]) -> dict[str, Any]:
    import inspect

    parameters = inspect.signature(function).parameters
    return {name: parameters[name].default for name in names}


def _wordnet_root() -> str | None:
    """The folder WordNet was loaded from in this process, without loading it."""
    from nltk.corpus import wordnet
    from nltk.corpus.util import LazyCorpusLoader

    # A LazyCorpusLoader turns itself into the reader once loaded; until then,
    # any attribute access (even .root) would load it.
    return None if isinstance(wordnet, LazyCorpusLoader) else str(wordnet.root)


def _wordnet_info() -> dict[str, Any]:
    root = _wordnet_root()
    if root is None:
        return {"loaded": False}
    from nltk.corpus import wordnet

    return {"loaded": True, "root": root, "version": wordnet.get_version()}


_SETTINGS: dict[str, Callable[[bool, int | None], dict[str, Any]]] = {
    "bleu": _bleu_settings,
    "nist": _nist_settings,
    "meteor": _meteor_settings,
    "ter": _ter_settings,
    "rouge_l": _rouge_l_settings,
}
