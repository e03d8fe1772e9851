"""GLUE metrics as a local ``evaluate`` module (never fetched from the Hub).

``evaluate.load("<this directory>", config_name)`` finds this file because it
has the same name as its directory. Two configurations:

* ``classification``: int predictions/references -> accuracy, f1, matthews.
  F1 is binary with class 1 as the positive class when the labels are binary,
  macro-averaged when there are more than two classes.
* ``regression``: float predictions/references -> pearson, spearman.

Values are plain Python floats on their natural scale ([0, 1] or [-1, 1]),
not percentages. This file is loaded by evaluate as a standalone script, so
it imports nothing from pst_bench.
"""

from __future__ import annotations

import math
import warnings

import datasets
import evaluate
import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

_DESCRIPTION = "Accuracy, F1 and Matthews correlation, or Pearson and Spearman correlation, for GLUE tasks."
_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""
_INPUTS_DESCRIPTION = """\
Args:
    predictions: predicted class ids (classification) or scores (regression).
    references: gold class ids or scores, same length.
    num_labels (optional, classification only): the task's number of classes; decides
        binary vs macro F1. Without it, F1 is binary if every label seen is 0 or 1.
Returns:
    classification: {"accuracy", "f1", "matthews"}; regression: {"pearson", "spearman"}.
Examples:
    >>> metric = evaluate.load("path/to/glue_metric", "classification")
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8, 'matthews': 0.5773502691896258}
"""

_INPUT_TYPES = {"classification": "int64", "regression": "float64"}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS_DESCRIPTION)
class GlueMetric(evaluate.Metric):
    """GLUE classification or regression metrics, chosen by ``config_name``."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _INPUT_TYPES:
            raise KeyError(
                f"Unknown glue_metric configuration {self.config_name!r}; use one of {sorted(_INPUT_TYPES)}."
            )
        value = datasets.Value(_INPUT_TYPES[self.config_name])
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS_DESCRIPTION,
            features=datasets.Features({"predictions": value, "references": value}),
        )

    def _compute(self, predictions, references, num_labels: int | None = None) -> dict[str, float]:
        if self.config_name == "regression":
            return regression_scores(predictions, references)
        return classification_scores(predictions, references, num_labels)


def classification_scores(predictions, references, num_labels: int | None = None) -> dict[str, float]:
    """Accuracy, F1 (binary for two classes, else macro) and Matthews correlation."""
    predictions, references = np.asarray(predictions), np.asarray(references)
    if num_labels is None:
        seen = np.union1d(predictions, references)
        is_binary = bool(np.isin(seen, [0, 1]).all())
    else:
        is_binary = num_labels <= 2
    # zero_division=0: a batch with no positive class scores 0 instead of
    # warning; that is sklearn's value anyway, only quieter.
    average = "binary" if is_binary else "macro"
    f1 = f1_score(references, predictions, average=average, pos_label=1, zero_division=0.0)
    return {
        "accuracy": float(accuracy_score(references, predictions)),
        "f1": float(f1),
        "matthews": float(matthews_corrcoef(references, predictions)),
    }


def regression_scores(predictions, references) -> dict[str, float]:
    """Pearson and Spearman correlation between predicted and gold scores."""
    predictions = np.asarray(predictions, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    return {
        "pearson": _correlation(stats.pearsonr, predictions, references),
        "spearman": _correlation(stats.spearmanr, predictions, references),
    }


def _correlation(statistic, predictions: np.ndarray, references: np.ndarray) -> float:
    """A correlation, 0.0 where it is undefined.

    A constant input (e.g. a model that has collapsed to one score) has no
    correlation; scipy returns NaN with a warning. We report 0.0, as
    sklearn's Matthews correlation does in the same case, so that "best
    checkpoint" comparisons never see a NaN.
    """
    if len(predictions) < 2 or np.ptp(predictions) == 0 or np.ptp(references) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        value = float(statistic(predictions, references)[0])
    return 0.0 if math.isnan(value) else value
