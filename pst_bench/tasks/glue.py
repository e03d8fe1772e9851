"""GLUE: sequence classification / regression, scored with the package's evaluate module."""

from __future__ import annotations

import torch
from transformers import DataCollatorWithPadding

from ..data import load_glue_splits
from ..metrics import compute_task_metrics
from .base import TaskRunner


class GlueRunner(TaskRunner):
    higher_is_better = True
    architecture = "sequence_classification"
    example_models = "bert-base, roberta-*, minilm-l6"

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
            evals[name] = self._tokenize(split, tokenizer)
        return self._tokenize(train_set, tokenizer), evals

    def collator(self, tokenizer):
        return DataCollatorWithPadding(tokenizer)

    def loss(self, model, batch):
        return model(**batch).loss

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
            results[split] = compute_task_metrics(task, torch.cat(predictions).tolist(), torch.cat(references).tolist())
        model.train()
        return results
