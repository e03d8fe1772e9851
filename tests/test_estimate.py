"""python -m pst_bench.perf.estimate: a sweep's training FLOPs and GPU-hours, checked by hand on table2_bert."""

from __future__ import annotations

import pytest

# bert-base-uncased: embeddings 23,837,184 + 12 layers x 7,087,872 + pooler 590,592, plus the task head
BERT_BASE = 23_837_184 + 12 * 7_087_872 + 590_592
HEAD = {1: 769, 2: 1_538, 3: 2_307}  # 768 x labels + labels
# task: (labels, training examples, mean tokens): the stated defaults (no local data)
GLUE = {
    "mnli": (3, 392_702, 40),
    "qqp": (2, 363_846, 30),
    "qnli": (2, 104_743, 50),
    "sst2": (2, 67_349, 13),
    "cola": (2, 8_551, 11),
    "stsb": (1, 5_749, 31),
    "mrpc": (2, 3_668, 53),
    "rte": (2, 2_490, 70),
}


def test_table2_bert_matches_a_hand_computation(capsys):
    from pst_bench.perf.estimate import DEFAULT_TRAIN, estimate, main

    assert {task: v[1:] for task, v in GLUE.items()} == DEFAULT_TRAIN
    flops_per_s = 1e14
    jobs = estimate("table2_bert", [], flops_per_s, measure=False)
    assert len(jobs) == 56  # 8 tasks x (Fine-tune + (MaP, MvP, PST) x (50%, 90%))
    # by hand: 7 jobs per task, 20 epochs (the paper scale), 6 x params x tokens
    by_hand = {
        task: 6 * (BERT_BASE + HEAD[labels]) * examples * tokens * 20
        for task, (labels, examples, tokens) in GLUE.items()
    }
    for job in jobs:
        task = job.run.split()[0]
        assert job.flops == pytest.approx(by_hand[task], rel=1e-12)
        assert job.hours == pytest.approx(by_hand[task] / flops_per_s / 3600, rel=1e-12)
    total_hours = 7 * sum(by_hand.values()) / flops_per_s / 3600
    assert sum(job.hours for job in jobs) == pytest.approx(total_hours, rel=1e-12)

    # the command: a throughput in tokens/s on bert-base becomes 6 x N x tokens/s FLOP/s
    assert main(["sweep=table2_bert", "--throughput", "50000", "--no-measure"]) == 0
    out = capsys.readouterr().out
    hours_at_50k = 7 * sum(by_hand.values()) / (6 * (BERT_BASE + HEAD[2]) * 50_000) / 3600
    assert f"56 jobs: {7 * sum(by_hand.values()) / 1e18:.2f} EFLOP, {hours_at_50k:.1f} GPU-hours in total" in out
    assert "56 jobs: 3.07 EFLOP, 26.0 GPU-hours in total, the longest job 1.75 h" in out  # docs/sweeps.md
    assert "| mnli bert-base pst p90 | 109.5M | 392,702 | 40.0 (default) | 20 |" in out


def test_overrides_apply_to_every_job_and_cap_the_tokens():
    from pst_bench.perf.estimate import estimate

    (job,) = estimate(None, ["task=rte", "model=bert-base", "train.max_train_examples=1000", "train.epochs=3"], 1e14)
    assert (job.examples, job.epochs) == (1000, 3.0)
    (capped,) = estimate(None, ["task=rte", "train.max_steps=10", "train.batch_size=32"], 1e14, measure=False)
    assert capped.tokens == pytest.approx(10 * 32 * 70)  # 10 steps of 32 examples, under one epoch of 2,490
