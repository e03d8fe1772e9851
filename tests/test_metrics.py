"""Task metrics: hand-checked values, the "main" key, and loading from the package."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import filecmp
import inspect
import math
import shutil
from pathlib import Path

import evaluate
import pytest
from omegaconf import OmegaConf
from scipy import stats

from pst_bench.errors import ConfigError
from pst_bench.metrics import GLUE_METRIC_DIR, compute_task_metrics, load_task_metric

TASK_CONF = Path(__file__).resolve().parents[1] / "conf" / "task"
# GLUE tasks only (the NLG task files carry no classification fields)
ALL_TASKS = sorted(p.stem for p in TASK_CONF.glob("*.yaml") if "num_labels:" in p.read_text())


def task(name):
    return OmegaConf.load(TASK_CONF / f"{name}.yaml")


def test_binary_classification_by_hand():
    # TP=2 (rows 0, 3), TN=1 (row 1), FP=1 (row 2), FN=0.
    tp, tn, fp, fn = 2, 1, 1, 0
    scores = compute_task_metrics(task("cola"), [1, 0, 1, 1], [1, 0, 0, 1])
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    matthews = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["f1"] == pytest.approx(2 * precision * recall / (precision + recall)) == pytest.approx(0.8)
    assert matthews == pytest.approx(1 / math.sqrt(3))
    assert scores["matthews"] == pytest.approx(matthews) == pytest.approx(0.5773502691896258)
    assert all(type(value) is float for value in scores.values())  # plain floats, JSON-safe


def test_f1_positive_class_is_one():
    # Only class 0 is ever right: binary F1 on class 1 is 0, accuracy is not.
    scores = compute_task_metrics(task("mrpc"), [0, 0, 0, 1], [0, 0, 0, 0])
    assert scores["f1"] == 0.0 and scores["accuracy"] == 0.75


def test_three_class_f1_is_macro():
    scores = compute_task_metrics(task("mnli"), [0, 1, 2, 2, 1], [0, 1, 2, 1, 1])
    # Per class F1: class 0 = 1; class 1: P=1, R=2/3 -> 0.8; class 2: P=1/2, R=1 -> 2/3.
    assert scores["f1"] == pytest.approx((1 + 0.8 + 2 / 3) / 3)
    assert scores["accuracy"] == pytest.approx(0.8)


def test_three_class_task_stays_macro_when_a_batch_only_has_labels_0_and_1():
    scores = compute_task_metrics(task("mnli"), [0, 1, 1, 0], [0, 1, 0, 0])
    # class 0: P=1, R=2/3 -> 0.8; class 1: P=1/2, R=1 -> 2/3; binary F1 would be 2/3.
    assert scores["f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_regression_by_hand_and_against_scipy():
    predictions, references = [1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 3.5, 3.0]
    scores = compute_task_metrics(task("stsb"), predictions, references)
    # Centered: dx = (-1.5, -.5, .5, 1.5), dy = (-1, -.5, 1, .5): r = 3 / sqrt(5 * 2.5).
    assert scores["pearson"] == pytest.approx(3 / math.sqrt(12.5))
    # Ranks of y are (1, 2, 4, 3): rho = 1 - 6 * 2 / (4 * 15).
    assert scores["spearman"] == pytest.approx(0.8)
    assert scores["pearson"] == pytest.approx(stats.pearsonr(predictions, references)[0])
    assert scores["spearman"] == pytest.approx(stats.spearmanr(predictions, references)[0])
    assert set(scores) == {"pearson", "spearman", "main"}


def test_constant_regression_predictions_score_zero_not_nan():
    scores = compute_task_metrics(task("stsb"), [2.5, 2.5, 2.5], [1.0, 2.0, 4.0])
    assert scores["pearson"] == 0.0 and scores["spearman"] == 0.0


@pytest.mark.parametrize("name", ALL_TASKS)
def test_main_follows_the_task_metric(name):
    cfg = task(name)
    if cfg.is_regression:
        scores = compute_task_metrics(cfg, [0.1, 2.0, 3.3, 4.9], [0.5, 2.5, 3.0, 4.0])
    else:
        scores = compute_task_metrics(cfg, [1, 0, 1, 1], [1, 0, 0, 1])
    assert scores["main"] == scores[cfg.metric]


def test_main_key_changes_with_the_metric():
    cfg = OmegaConf.merge(task("sst2"), {"metric": "matthews"})
    assert compute_task_metrics(cfg, [1, 0, 1, 1], [1, 0, 0, 1])["main"] == pytest.approx(1 / math.sqrt(3))
    cfg = OmegaConf.merge(task("sst2"), {"metric": "bleu"})
    with pytest.raises(ConfigError, match="bleu"):
        compute_task_metrics(cfg, [1, 0], [1, 0])


def test_metric_is_loaded_from_the_package_files_and_cached():
    metric = load_task_metric(task("rte"))
    assert load_task_metric(task("sst2")) is metric  # one module per config name
    assert metric.config_name == "classification"
    assert load_task_metric(task("stsb")).config_name == "regression"
    # evaluate imports a copy of our script (its modules cache), never a Hub one.
    assert filecmp.cmp(inspect.getfile(type(metric)), GLUE_METRIC_DIR / "glue_metric.py", shallow=False)
    # A package file, so it ships in the wheel with pst_bench.metrics.glue_metric.
    assert (GLUE_METRIC_DIR / "__init__.py").is_file()


def test_unknown_config_name_is_refused():
    with pytest.raises(KeyError, match="classification"):
        evaluate.load(str(GLUE_METRIC_DIR), "default")


def test_loads_from_a_read_only_copy(tmp_path):
    copy = tmp_path / "glue_metric"
    shutil.copytree(GLUE_METRIC_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [copy, *copy.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = sorted(p.name for p in copy.iterdir())
    try:
        metric = evaluate.load(str(copy), "regression", keep_in_memory=True)
        scores = metric.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0, 4.0])
        assert scores["pearson"] == pytest.approx(stats.pearsonr([1, 2, 3], [1, 2, 4])[0])
        assert sorted(p.name for p in copy.iterdir()) == before  # nothing written next to the script
    finally:
        copy.chmod(0o755)
