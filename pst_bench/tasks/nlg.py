"""Data-to-text generation with a causal LM (GPT-2 on E2E, WebNLG, DART).

Training example: ``<linearised input><separator> <reference><eos>``, loss on the
reference tokens and the EOS only, with label smoothing. Per epoch the dev loss
(teacher forcing) is recorded; after training the ``nlg.decode_splits`` are
decoded with beam search and scored with BLEU, NIST, METEOR, TER (and ROUGE-L)
against all references of each input. Decoded lines and the references are
written next to the results record so any metric can be recomputed later.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from datasets import Dataset
from tqdm.auto import tqdm

from ..data.nlg import load_nlg_split
from ..files import atomic_write_text
from ..metrics.nlg import compute_nlg_metrics, metric_settings
from .base import TaskRunner

IGNORE = -100


def eos_id(tokenizer) -> int:
    """GPT-2's EOS; a BERT-vocabulary tokenizer (the offline tiny model) uses [SEP]."""
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id


class NlgRunner(TaskRunner):
    higher_is_better = False
    architecture = "causal_lm"
    example_models = "gpt2, gpt2-medium"

    @property
    def main_name(self) -> str:
        return "loss"

    # -- data ----------------------------------------------------------------------
    def _prompts(self, tokenizer, sources: list[str]) -> list[list[int]]:
        """Token ids of ``<source><separator>``, the source cut to task.max_source_length tokens."""
        limit = int(self.cfg.task.max_source_length)
        separator = tokenizer(self.cfg.nlg.prompt_separator, add_special_tokens=False)["input_ids"]
        encoded = tokenizer(list(sources), add_special_tokens=False)["input_ids"] if sources else []
        return [ids[:limit] + separator for ids in encoded]

    def _encode_pairs(self, tokenizer, pairs) -> Dataset:
        """Teacher-forcing rows: prompt + target + EOS, labels only on target and EOS."""
        limit = int(self.cfg.task.max_target_length)
        prompts = self._prompts(tokenizer, [source for source, _ in pairs])
        targets = (
            tokenizer([" " + target.strip() for _, target in pairs], add_special_tokens=False)["input_ids"]
            if pairs
            else []
        )
        rows = {"input_ids": [], "labels": []}
        for prompt, target in zip(prompts, targets):
            completion = target[:limit] + [eos_id(tokenizer)]
            rows["input_ids"].append(prompt + completion)
            rows["labels"].append([IGNORE] * len(prompt) + completion)
        return Dataset.from_dict(rows)

    def _split(self, name: str):
        return load_nlg_split(self.cfg.task, self.cfg.data, name)

    def build_datasets(self, tokenizer):
        train_cfg = self.cfg.train
        pairs = self._split("train").training_pairs()
        if train_cfg.max_train_examples and train_cfg.max_train_examples < len(pairs):
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(int(train_cfg.seed)))
            pairs = [pairs[i] for i in order[: int(train_cfg.max_train_examples)].tolist()]
        evals = {}
        for name in self.cfg.task.eval_splits:
            eval_pairs = self._split(name).training_pairs()
            if train_cfg.max_eval_examples:
                eval_pairs = eval_pairs[: int(train_cfg.max_eval_examples)]
            evals[name] = self._encode_pairs(tokenizer, eval_pairs)
        return self._encode_pairs(tokenizer, pairs), evals

    def collator(self, tokenizer):
        pad = tokenizer.pad_token_id

        def collate(features):
            width = max(len(f["input_ids"]) for f in features)
            ids = torch.full((len(features), width), pad, dtype=torch.long)
            labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
            mask = torch.zeros((len(features), width), dtype=torch.long)
            for row, feature in enumerate(features):  # right padding for teacher forcing
                n = len(feature["input_ids"])
                ids[row, :n] = torch.tensor(feature["input_ids"])
                labels[row, :n] = torch.tensor(feature["labels"])
                mask[row, :n] = 1
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}

        return collate

    # -- loss and evaluation ----------------------------------------------------------
    def _token_loss(self, model, batch, label_smoothing: float):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        shifted_logits = logits[:, :-1].reshape(-1, logits.size(-1)).float()
        shifted_labels = batch["labels"][:, 1:].reshape(-1)
        return F.cross_entropy(
            shifted_logits, shifted_labels, ignore_index=IGNORE, label_smoothing=label_smoothing, reduction="sum"
        ), (shifted_labels != IGNORE).sum()

    def loss(self, model, batch):
        total, count = self._token_loss(model, batch, float(self.cfg.nlg.label_smoothing))
        return total / count.clamp(min=1)

    @torch.no_grad()
    def evaluate(self, model, loaders, accelerator):
        """Dev loss per target token (no label smoothing) and its perplexity."""
        model.eval()
        results = {}
        for split, loader in loaders.items():
            total = torch.zeros((), device=accelerator.device)
            count = torch.zeros((), device=accelerator.device)
            for batch in loader:
                loss_sum, n = self._token_loss(model, batch, 0.0)
                total += loss_sum
                count += n
            total, count = accelerator.reduce(total, "sum"), accelerator.reduce(count, "sum")
            loss = (total / count.clamp(min=1)).item()
            results[split] = {"loss": loss, "perplexity": float(torch.exp(torch.tensor(loss))), "main": loss}
        model.train()
        return results

    # -- decoding ---------------------------------------------------------------------
    def generation_kwargs(self, tokenizer) -> dict:
        nlg = self.cfg.nlg
        return {
            "num_beams": int(nlg.num_beams),
            "length_penalty": float(nlg.length_penalty),
            "no_repeat_ngram_size": int(nlg.no_repeat_ngram_size),
            "max_new_tokens": int(nlg.max_new_tokens),
            "do_sample": False,
            "early_stopping": True,
            "eos_token_id": eos_id(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
        }

    @torch.no_grad()
    def decode(self, model, tokenizer, sources: list[str], device) -> list[str]:
        """Beam-search continuations of the prompts, batched with left padding."""
        kwargs = self.generation_kwargs(tokenizer)
        batch_size = int(self.cfg.nlg.decode_batch_size)
        outputs = []
        for start in tqdm(range(0, len(sources), batch_size), desc="decoding", disable=not self.cfg.train.progress_bar):
            prompts = self._prompts(tokenizer, sources[start : start + batch_size])
            width = max(len(p) for p in prompts)
            ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(prompts), width), dtype=torch.long)
            for row, prompt in enumerate(prompts):
                ids[row, width - len(prompt) :] = torch.tensor(prompt)
                mask[row, width - len(prompt) :] = 1
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
            for row in generated[:, width:].tolist():
                text = tokenizer.decode(row, skip_special_tokens=True)
                outputs.append(" ".join(text.split()))  # one line per input
        return outputs

    def finish(self, model, tokenizer, accelerator, outputs_prefix: Path) -> dict:
        nlg = self.cfg.nlg
        if not accelerator.is_main_process:
            return {}
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.eval()
        generation = {}
        for split_name in nlg.decode_splits:
            split = self._split(split_name)
            sources, references = split.sources, split.references
            if nlg.max_decode_examples:
                sources = sources[: int(nlg.max_decode_examples)]
                references = references[: int(nlg.max_decode_examples)]
            hypotheses = self.decode(unwrapped, tokenizer, sources, accelerator.device)
            hyp_path = outputs_prefix.with_name(f"{outputs_prefix.name}.{split_name}.hyp.txt")
            ref_path = outputs_prefix.with_name(f"{outputs_prefix.name}.{split_name}.refs.jsonl")
            atomic_write_text(hyp_path, "".join(h + "\n" for h in hypotheses))
            atomic_write_text(ref_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in references))
            metrics = compute_nlg_metrics(hypotheses, references, list(nlg.metrics), bool(nlg.lowercase))
            generation[split_name] = {
                "inputs": len(sources),
                "metrics": metrics,
                "hypotheses": hyp_path.name,
                "references": ref_path.name,
                "generation": self.generation_kwargs(tokenizer),
                "metric_settings": metric_settings(list(nlg.metrics), bool(nlg.lowercase), references),
            }
        return {"generation": generation}
