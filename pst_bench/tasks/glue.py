"""GLUE: sequence classification / regression, scored with the package's evaluate module."""

from __future__ import annotations

import logging

import torch
from transformers import DataCollatorWithPadding

from ..data import load_glue_splits
from ..data.sampling import eval_order
from ..metrics import compute_task_metrics
from .base import TaskRunner

log = logging.getLogger(__name__)


def prediction_summary(predictions: torch.Tensor, references: torch.Tensor, is_regression: bool) -> dict:
    """What a dev set's predictions look like: class counts, or mean and spread beside the labels'.

    Stored in the record so that a constant predictor is recognised from it
    (``pst_bench.record.RunRecord.constant_predictor``).
    """
    if is_regression:
        return {
            "mean": round(float(predictions.mean()), 6),
            "std": round(float(predictions.std(unbiased=False)), 6),
            "label_mean": round(float(references.float().mean()), 6),
            "label_std": round(float(references.float().std(unbiased=False)), 6),
        }
    classes, counts = torch.unique(predictions, return_counts=True)
    labels, label_counts = torch.unique(references, return_counts=True)
    return {
        "counts": {str(int(c)): int(n) for c, n in zip(classes, counts)},
        "majority_share": round(float(counts.max()) / predictions.numel(), 6),
        "label_counts": {str(int(c)): int(n) for c, n in zip(labels, label_counts)},
    }


def constant_baseline(task_cfg, references: torch.Tensor) -> dict:
    """The best main value any constant predictor reaches on these labels, and its class.

    A classifier that learned must beat it: on MRPC the constant "paraphrase" scores F1 81.22, so a
    sparse run at F1 80.5 is no better than predicting one class by the task's own metric.
    """
    best = {"class": None, "main": None}
    for label in range(int(task_cfg.num_labels)):
        value = compute_task_metrics(task_cfg, [label] * references.numel(), references.tolist())["main"]
        if value == value and (best["main"] is None or value > best["main"]):  # value == value: not NaN
            best = {"class": label, "main": round(float(value), 6)}
    return best


def output_layer(model, num_labels: int) -> torch.nn.Linear | None:
    """The head's last linear layer (BERT `classifier`, RoBERTa `classifier.out_proj`, GPT-2 `score`)."""
    found = None
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.out_features == num_labels:
            found = module
    return found


class GlueRunner(TaskRunner):
    higher_is_better = True
    architecture = "sequence_classification"
    example_models = "bert-base, roberta-*, minilm-l6"

    def __init__(self, cfg):
        super().__init__(cfg)
        self._baselines: dict[str, dict] = {}  # per evaluation split: a property of its labels alone

    def _tokenize(self, dataset, tokenizer):
        task = self.cfg.task
        fields = list(task.text_fields)

        def encode(batch):
            return tokenizer(*[batch[f] for f in fields], truncation=True, max_length=int(task.max_length))

        keep = [c for c in dataset.column_names if c != "label"]
        return dataset.map(encode, batched=True, remove_columns=keep).rename_column("label", "labels")

    def build_datasets(self, tokenizer):
        task, train = self.cfg.task, self.cfg.train
        splits = load_glue_splits(task, self.cfg.data, ["train", *task.eval_splits])
        train_set = splits["train"]
        if train.max_train_examples and train.max_train_examples < len(train_set):
            train_set = train_set.shuffle(seed=int(train.seed)).select(range(int(train.max_train_examples)))
        evals = {}
        for name in task.eval_splits:
            split = splits[name]
            if train.max_eval_examples and train.max_eval_examples < len(split):
                split = split.select(range(int(train.max_eval_examples)))
            tokenized = self._tokenize(split, tokenizer)
            # longest first: eval batches of similar length pad little; the metrics do not depend on the order
            evals[name] = tokenized.select(eval_order([len(ids) for ids in tokenized["input_ids"]]))
        return self._tokenize(train_set, tokenizer), evals

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    @torch.no_grad()
    def init_head(self, model, train_set) -> None:
        """``task.regression_head_bias=train_mean``: start the regression output at the labels' mean.

        A fresh head outputs about 0 while STS-B's labels average 2.7: under PST only the small
        factors and the head train, and from 0 the model collapses to a constant prediction
        (README, "STS-B under PST"). Every method gets the same start, so the comparison stays fair.
        """
        task = self.cfg.task
        if not task.is_regression or task.regression_head_bias != "train_mean":
            return
        layer = output_layer(model, int(task.num_labels))
        if layer is None or layer.bias is None:
            log.warning("task.regression_head_bias=train_mean: the model's output layer has no bias; left at 0")
            return
        mean = float(torch.tensor(train_set["labels"], dtype=torch.float64).mean())
        layer.bias.fill_(mean)
        log.info("regression head bias set to the training labels' mean %.4f", mean)

    def loss(self, model, batch):
        return model(**batch).loss

    def _constant_baseline(self, split: str, references: torch.Tensor) -> dict:
        # computed at the first evaluation of the split, reused at every later one
        if split not in self._baselines:
            self._baselines[split] = constant_baseline(self.cfg.task, references)
        return dict(self._baselines[split])

    @torch.no_grad()
    def evaluate(self, model, loaders, accelerator):
        task = self.cfg.task
        model.eval()
        results = {}
        for split, loader in loaders.items():
            predictions, references = [], []
            for batch in loader:
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                preds = logits.squeeze(-1).float() if task.is_regression else logits.argmax(dim=-1)
                preds, labels = accelerator.gather_for_metrics((preds, batch["labels"]))
                predictions.append(preds.cpu())
                references.append(labels.cpu())
            predictions, references = torch.cat(predictions), torch.cat(references)
            results[split] = compute_task_metrics(task, predictions.tolist(), references.tolist())
            summary = prediction_summary(predictions, references, bool(task.is_regression))
            if not task.is_regression:  # a constant's Pearson is undefined: STS-B's constant is Pearson 0
                summary["constant_baseline"] = self._constant_baseline(split, references)
            results[split]["predictions"] = summary
        model.train()
        return results
