"""The evidence protocol command: its spec, its stages on hand-made records, and its runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import fake_record
from pst_bench.errors import ConfigError
from pst_bench.protocol import execute
from pst_bench.protocol.__main__ import main
from pst_bench.protocol.execute import Ledger, run_protocol
from pst_bench.protocol.plan import ladder_step, make_plan, next_lambda
from pst_bench.protocol.spec import load_spec

HERE = Path(__file__).parent


def write_spec(tmp_path: Path, **changes) -> Path:
    """A small protocol on SST-2: lengths 2 and 4 probed at 80%, four sparsities, two held-out seeds, one
    ablation seed."""
    body = {
        "base": "cpu",
        "results_dir": str(tmp_path / "runs"),
        "tasks": ["sst2"],
        "heldout_seeds": [1, 2],
        "schedule": {"epochs": [2, 4], "sparsity": {"sst2": 0.8}, "results_dir": str(tmp_path / "schedule")},
        "sparsities": [0.5, 0.7, 0.8, 0.9],
        "ablation": {"seeds": [1], "variants": {"PST[mag+ab]": ["method=pst_mag_ab"], "r1=4 r2=8": ["method.r1=4"]}},
        "baselines": {"grids": {"sparsegpt": [1e-4]}},
        "soft_movement": {"task": "sst2", "sparsity": 0.9, "seeds": [1]},
    }
    # the schedule section merges (its results folder must stay under tmp_path); the others replace
    body["schedule"].update(changes.pop("schedule", {}))
    body.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


# dev values (fractions) of the simulated runs: dense best at 1e-4; MaP's share of dense falls with sparsity;
# PST's grid is best at its highest point 1e-3, then worse at 3e-3 (one extension); MvP best inside
DENSE = {3e-5: 0.85, 1e-4: 0.90, 3e-4: 0.90}  # a tie at the top: the policy's sorted-order rule decides
MAP_AT = {0.5: 0.89, 0.7: 0.85, 0.8: 0.70, 0.9: 0.50}
PST_LR = {1e-4: 0.60, 3e-4: 0.65, 1e-3: 0.70, 3e-3: 0.66}
MVP_LR = {3e-5: 0.60, 1e-4: 0.68, 3e-4: 0.62}
WITH_BASELINE = {"counts": {"0": 5, "1": 5}, "majority_share": 0.5, "constant_baseline": {"class": 1, "main": 0.509}}


def simulated_value(request) -> tuple[float, float]:
    """(dev at epoch 2, dev at the last epoch) of a request; 2-epoch schedule runs still gain 2 points."""
    if request.method == "finetune":
        value = DENSE.get(request.lr, 0.8)
    elif request.method == "map":
        value = MAP_AT[request.sparsity] - (0.0 if request.lr == 1e-4 else 0.01)
    elif request.method == "mvp":
        value = MVP_LR.get(request.lr, 0.5)
    else:
        value = PST_LR.get(request.lr, 0.5)
    value += 0.001 * request.seed
    return value, value + (0.02 if request.epochs == 2 else 0.0)


def simulated_achieved(request) -> float:
    """Soft movement's achieved sparsity grows with its penalty: λ / (λ + 100) (0.8 at the default 400)."""
    lam = float(next(item.split("=")[1] for item in request.extra if item.startswith("method.final_lambda=")))
    return lam / (lam + 100.0)


def finish(spec, plan, ledger, value_of=simulated_value, predictions=WITH_BASELINE) -> int:
    """Write a record for every pending run, as pst-bench would; returns how many."""
    for run in plan.pending:
        dev, final = value_of(run.request)
        record = fake_record(run.request.overrides(spec), dev=dev, final=final, predictions=predictions)
        if run.request.method == "soft_mvp":
            record["sparsity_achieved"]["overall"] = simulated_achieved(run.request)
        assert record["run_id"] == ledger.run_id(run.request), "the ledger composes the id the run writes"
        folder = Path(run.request.results_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{record['run_id']}.json").write_text(json.dumps(record))
    return len(plan.pending)


def use_fake_pst_bench(monkeypatch, tmp_path, *before):
    """Run the protocol's runs in ``tmp_path`` with tests/fake_pst_bench.py (the simulated record, no
    training) instead of pst-bench; ``before``: python arguments ahead of the script (a wrapper)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(
        execute,
        "_command",
        lambda spec, request: [
            sys.executable,
            *before,
            str(HERE / "fake_pst_bench.py"),
            json.dumps(simulated_value(request)),
            *request.overrides(spec),
        ],
    )


def run_to_the_end(spec, value_of=simulated_value):
    ledger, rounds = Ledger(spec), []
    while True:
        ledger.reload()
        plan = make_plan(spec, ledger)
        ledger.adopt(plan)
        if not plan.pending:
            return plan, rounds
        rounds.append([run.request for run in plan.pending])
        finish(spec, plan, ledger, value_of=value_of)


def test_the_penalty_search_steps_until_it_brackets_the_target_then_bisects_in_log_space():
    assert next_lambda({400.0: 0.8}, 0.9, 4.0) == 1600.0
    assert next_lambda({400.0: 0.95}, 0.9, 4.0) == 100.0
    assert next_lambda({400.0: 0.8, 1600.0: 0.95, 6400.0: 0.99}, 0.9, 4.0) == pytest.approx(800.0)
    assert next_lambda({400.0: 0.8, 800.0: 0.85, 1600.0: 0.95}, 0.9, 4.0) == pytest.approx((800 * 1600) ** 0.5)


def test_ladder_steps_one_point_beyond_the_edge():
    assert ladder_step(3e-4, up=True) == pytest.approx(1e-3)
    assert ladder_step(1e-3, up=True) == pytest.approx(3e-3)
    assert ladder_step(3e-5, up=False) == pytest.approx(1e-5)
    assert ladder_step(1e-4, up=False) == pytest.approx(3e-5)
    assert ladder_step(5e-5, up=True) == pytest.approx(5e-5 * 10**0.5)


def test_the_shipped_specs_load_and_the_gpu_spec_only_changes_device_and_folders():
    cpu, gpu = load_spec("cpu"), load_spec("gpu")
    assert cpu.grids == gpu.grids and cpu.heldout_seeds == gpu.heldout_seeds == [1, 2, 3, 4, 5]
    assert sorted(cpu.baselines.grids) == ["sparsegpt", "wanda", "wanda_oneshot"] == sorted(gpu.baselines.grids)
    assert "train.device=cuda" in gpu.run_overrides and gpu.results_dir != cpu.results_dir
    assert gpu.schedule.results_dir != cpu.schedule.results_dir and gpu.schedule.epochs == cpu.schedule.epochs
    assert all(len(points) == 3 for points in cpu.grids.values()), "equal tuning: three points per method"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"heldout_seeds": [0, 1]}, "selection seed 0 may not be reported"),
        ({"grids": {"map": [1e-4, 3e-5]}}, "ascending"),
        ({"cells": {"map_share": [0.9, 0.6]}}, "map_share"),
        ({"tasks": ["sst2", "stsb", "mrpc"]}, "no entry for task mrpc"),
        ({"nonsense": 1}, "nonsense"),
        ({"baselines": {"grids": {"map": [1e-4]}}}, "map is in grids and baselines.grids"),
        ({"soft_movement": {"task": "mrpc"}}, "soft_movement.task must be one of tasks"),
        ({"soft_movement": {"step": 1.0}}, "step > 1"),
    ],
)
def test_a_bad_spec_is_refused_in_one_line(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(str(write_spec(tmp_path, **change)))


def test_an_unknown_spec_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="choose one of cpu, device, gpu"):
        load_spec("tpu")


@pytest.mark.slow  # about 70 hand-made records, each composed twice
def test_the_whole_protocol_on_simulated_runs(tmp_path):
    spec = load_spec(str(write_spec(tmp_path)))
    plan, rounds = run_to_the_end(spec)
    # schedule: 2 epochs fails on MaP alone (PST is never run at 2), 4 epochs converges for both
    assert [(r.method, r.epochs) for r in rounds[0]] == [("map", 2)]
    assert [(r.method, r.epochs) for r in rounds[1]] == [("map", 4)]
    assert [(r.method, r.epochs) for r in rounds[2]] == [("pst", 4)]
    assert plan.epochs == {"sst2": 4}
    assert "schedule sst2: 2 epochs rejected: map still gaining (+2.00)" in plan.decisions
    # cells: shares 0.989 (50%: below the 60% floor anyway), 0.944 (70%), 0.778 (80%), 0.556 (90%: below 0.6)
    assert plan.cells == {"sst2": [0.7, 0.8]}
    requests = [run.request for run in plan.runs]
    assert all(run.finished for run in plan.runs)
    ids = [run.rid for run in plan.runs]
    assert len(ids) == len(set(ids)), "no run is named twice"
    started = [r for rnd in rounds for r in rnd]
    assert len(started) == len(ids), "no run was started twice"
    # stage 0 reused the probe's MaP 80% record at the chosen length: copied, not run again
    probe = next(
        run
        for run in plan.runs
        if run.request.stage == "schedule" and run.request.epochs == 4 and run.request.method == "map"
    )
    assert probe.folders == [str(tmp_path / "schedule"), str(tmp_path / "runs")]
    assert (tmp_path / "runs" / f"{probe.rid}.json").exists() and (tmp_path / "schedule" / f"{probe.rid}.json").exists()

    def lrs(method, sparsity, stages=("schedule", "0", "1")):
        return sorted(
            r.lr
            for r in requests
            if r.stage in stages and r.method == method and r.sparsity == sparsity and r.seed == 0 and r.epochs == 4
        )

    # equal tuning: three points each; PST's winner sat on the highest edge and its grid grew once, to 3e-3,
    # so MaP and MvP were padded to four points beyond their better edge (MaP's two edges tie: the sorted-order
    # rule picks 3e-4's side; MvP's 3e-4 beats its 3e-5), winners unchanged. MaP's middle point at each cell is
    # stage 0's run (at 80% the probe's, as is PST's): stage 1 adds the rest
    for sparsity in (0.7, 0.8, 0.9):
        assert lrs("map", sparsity) == pytest.approx([3e-5, 1e-4, 3e-4, 1e-3])
        assert lrs("map", sparsity, stages=("1",)) == pytest.approx([3e-5, 3e-4, 1e-3])
        assert lrs("mvp", sparsity) == pytest.approx([3e-5, 1e-4, 3e-4, 1e-3])
        assert lrs("pst", sparsity) == pytest.approx([1e-4, 3e-4, 1e-3, 3e-3])
    assert (
        "grid sst2 70% mvp: lr 0.0001 wins over 3e-05, 0.0001, 0.0003, 0.001 (padded by 1 beyond its better edge "
        "to the cell's 4 points)" in plan.decisions
    )
    assert lrs("map", 0.5) == pytest.approx([3e-5, 1e-4, 3e-4, 1e-3]), "claim 2's cell is padded too"
    assert lrs("finetune", 0.0) == pytest.approx([3e-5, 1e-4, 3e-4])
    assert (
        "grid sst2 dense finetune: lr 0.0001 wins over 3e-05, 0.0001, 0.0003 (tied at 90.00 with "
        "train.lr=0.0003: the first setting in sorted order wins)" in plan.decisions
    )
    # held-out seeds: every claim-1 cell's winners and dense's, at the winning rate, never seed 0
    held = [r for r in requests if r.stage == "2"]
    assert {(r.method, r.sparsity) for r in held} == {("finetune", 0.0)} | {
        (m, s) for m in ("map", "mvp", "pst") for s in (0.7, 0.8)
    }
    assert {r.seed for r in held} == {1, 2}
    # cell by cell, the sparsest first: 80%'s grids and held-out seeds, then dense's seeds, before 70%'s grids
    first_70_grid = min(i for i, r in enumerate(requests) if r.stage == "1" and r.sparsity == 0.7)
    assert max(i for i, r in enumerate(requests) if r.stage in ("1", "2") and r.sparsity == 0.8) < first_70_grid
    assert max(i for i, r in enumerate(requests) if r.stage == "2" and r.method == "finetune") < first_70_grid
    assert {r.lr for r in held if r.method == "pst"} == {1e-3} and {r.lr for r in held if r.method == "mvp"} == {1e-4}
    assert {r.lr for r in held if r.method == "finetune"} == {1e-4}
    # 90% is tuned (a documented failure if nothing learns) but gets no held-out seed
    assert not [
        r
        for r in requests
        if r.sparsity == 0.9 and r.seed != 0 and r.stage not in ("claims 3-4", "soft movement held-out")
    ]
    # claim 2: MaP and PST at 50%, tuned then held out
    assert {(r.method, r.seed) for r in requests if r.stage == "claim 2"} == {
        (m, s) for m in ("map", "pst") for s in (1, 2)
    }
    # claims 3-4: the variants at PST's winning rate of SST-2 90%, on the ablation seed, with the full score
    ablation = [r for r in requests if r.stage == "claims 3-4"]
    assert not [
        r
        for r in requests
        if r.sparsity == 0.9 and r.seed != 0 and r.stage not in ("claims 3-4", "soft movement held-out")
    ]
    assert {(r.method, r.extra, r.lr, r.seed) for r in ablation} == {
        ("pst", (), 1e-3, 1),
        ("pst_mag_ab", (), 1e-3, 1),
        ("pst", ("method.r1=4",), 1e-3, 1),
    }
    # issue 24's baselines last: tuned at every claim-1 cell (one point here), then on the held-out seeds, cell
    # by cell and the sparsest first (80%'s grid and seeds before 70%'s grid), after soft movement's few runs
    baselines = [r for r in requests if r.stage.startswith("baselines")]
    assert [(r.method, r.sparsity, r.seed) for r in baselines] == [
        ("sparsegpt", s, seed) for s in (0.8, 0.7) for seed in (0, 1, 2)
    ]
    assert requests.index(baselines[0]) > max(requests.index(r) for r in ablation)
    assert requests.index(baselines[0]) > max(requests.index(r) for r in requests if r.method == "soft_mvp")
    # soft movement: λ from 400 (80%) up by 4 to 1600 (94.1%), then bisected in log λ until within 1 point
    # of 90%: 800 (88.9%), 1131 (91.9%), 951 (90.5%); its weights at MvP's winning rate; then seed 1 at 951
    soft = [r for r in requests if r.method == "soft_mvp"]
    lambdas = [float(r.extra[0].split("=")[1]) for r in soft]
    assert [round(lam) for lam in lambdas] == [400, 1600, 800, 1131, 951, 951]
    assert [r.seed for r in soft] == [0, 0, 0, 0, 0, 1] and {r.lr for r in soft} == {1e-4}
    assert any(d.startswith("soft movement sst2 90%: λ 951.") for d in plan.decisions)


@pytest.mark.slow  # two tasks' small protocols, about 140 hand-made records
def test_claim_one_goes_task_by_task_before_the_rest(tmp_path):
    """In every plan, SST-2's claim-1 runs (its cells' grids, held-out seeds, dense's seeds) come before any
    of STS-B's grid runs, and every claim-1 run before any claim-2 or always-tuned run."""
    path = write_spec(tmp_path, tasks=["sst2", "stsb"], schedule={"sparsity": {"sst2": 0.8, "stsb": 0.8}})
    spec = load_spec(str(path))
    plan, rounds = run_to_the_end(spec)
    assert plan.cells == {"sst2": [0.7, 0.8], "stsb": [0.7, 0.8]}

    def claim1(r):
        return r.stage in ("1", "2") and (r.sparsity in plan.cells[r.task] or r.method == "finetune")

    def later(r):  # stage-1 and claim-2 runs outside the claim-1 cells
        return r.stage == "claim 2" or (r.stage == "1" and not claim1(r))

    interleaved = 0
    for pending in rounds:
        first_stsb_grid = next((i for i, r in enumerate(pending) if r.task == "stsb" and r.stage == "1"), None)
        sst2_claim1 = [i for i, r in enumerate(pending) if r.task == "sst2" and claim1(r)]
        if first_stsb_grid is not None and sst2_claim1:
            assert max(sst2_claim1) < first_stsb_grid, [r.label for r in pending]
            interleaved += any(pending[i].stage == "2" for i in sst2_claim1)
        claim1_at = [i for i, r in enumerate(pending) if claim1(r)]
        later_at = [i for i, r in enumerate(pending) if later(r)]
        if claim1_at and later_at:
            assert max(claim1_at) < min(later_at), [r.label for r in pending]
    assert interleaved, "some plan held SST-2's held-out seeds and STS-B's grid runs at once"


@pytest.mark.slow
def test_every_method_of_a_cell_ends_with_as_many_points_even_when_a_padded_point_wins(tmp_path):
    """PST grows to four points; MaP, padded to four, wins at its new 1e-3 edge and grows to five (its limit);
    then PST and MvP are padded to five too, each beyond its better edge. Held-out seeds use the new winners."""
    spec = load_spec(str(write_spec(tmp_path, always_tuned=[], claim2={"methods": ["pst"]})))

    def map_likes_fast(request):
        if request.method == "map" and request.stage == "1" and request.lr >= 1e-3:
            value = 0.95 if request.lr == 1e-3 else 0.90
            return value, value
        return simulated_value(request)

    ledger, blocked = Ledger(spec), []
    while True:  # run_to_the_end, keeping what each plan waited for
        ledger.reload()
        plan = make_plan(spec, ledger)
        ledger.adopt(plan)
        blocked += plan.blocked
        if not plan.pending:
            break
        finish(spec, plan, ledger, value_of=map_likes_fast)
    assert "sst2 80%: map, mvp padded to the cell's 4 points (equal tuning)" in blocked
    assert "sst2 80%: mvp, pst padded to the cell's 5 points (equal tuning)" in blocked

    def lrs(method, sparsity):
        return sorted(
            r.request.lr
            for r in plan.runs
            if r.request.method == method
            and r.request.sparsity == sparsity
            and r.request.seed == 0
            and r.request.epochs == 4
        )

    for sparsity in (0.7, 0.8):
        assert lrs("map", sparsity) == pytest.approx([3e-5, 1e-4, 3e-4, 1e-3, 3e-3])
        assert lrs("pst", sparsity) == pytest.approx([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]), "beyond 3e-3 (0.66 > 0.60)"
        assert lrs("mvp", sparsity) == pytest.approx([1e-5, 3e-5, 1e-4, 3e-4, 1e-3]), "below 3e-5 (0.60 > 0.50)"
    held = {(r.request.method, r.request.lr) for r in plan.runs if r.request.stage == "2"}
    assert {lr for method, lr in held if method == "map"} == {1e-3}
    assert (
        "grid sst2 70% map: lr 0.001 wins over 3e-05, 0.0001, 0.0003, 0.001, 0.003 (padded by 1 beyond its "
        "better edge to the cell's 5 points)" in plan.decisions
    )


@pytest.mark.slow
def test_a_grid_stays_on_its_edge_only_up_to_the_extension_limit(tmp_path):
    spec = load_spec(str(write_spec(tmp_path, max_extensions=1, always_tuned=[], claim2={"methods": ["pst"]})))
    ledger = Ledger(spec)
    rising = lambda request: (
        (request.lr, request.lr) if request.method == "pst" and request.stage == "1" else simulated_value(request)
    )  # noqa: E731
    for _ in range(12):
        plan = make_plan(spec, ledger)
        ledger.adopt(plan)
        if not plan.pending:
            break
        finish(spec, plan, ledger, rising)
        ledger.reload()
    pst = sorted({r.request.lr for r in plan.runs if r.request.method == "pst" and r.request.stage == "1"})
    assert pst == pytest.approx([1e-4, 3e-4, 1e-3, 3e-3]), "one extension, then the limit"
    assert any("still on the highest edge after 1 extensions: the limit" in d for d in plan.decisions)


def test_a_task_whose_dense_run_did_not_beat_its_constant_gets_no_cells(tmp_path):
    spec = load_spec(str(write_spec(tmp_path)))
    ledger = Ledger(spec)
    flat = lambda request: (0.52, 0.52) if request.method == "finetune" else simulated_value(request)  # noqa: E731
    for _ in range(6):
        plan = make_plan(spec, ledger)
        ledger.adopt(plan)
        finish(spec, plan, ledger, flat)
        ledger.reload()
    plan = make_plan(spec, ledger)
    assert any(
        d.startswith("cells sst2: none: dense (52.") and "constant predictor (50.90)" in d for d in plan.decisions
    )
    assert not [r for r in plan.runs if r.request.stage in ("1", "2", "claim 2")]


def test_a_probe_run_that_did_not_learn_judges_no_length(tmp_path):
    spec = load_spec(str(write_spec(tmp_path)))
    ledger = Ledger(spec)
    # PST predicts no better than its constant (50.9) at both lengths; MaP gains 2 points at 2 epochs only
    flat_pst = lambda request: (0.5, 0.5) if request.method == "pst" else simulated_value(request)  # noqa: E731
    for _ in range(4):
        finish(spec, make_plan(spec, ledger), ledger, flat_pst)
        ledger.reload()
    plan = make_plan(spec, ledger)
    assert plan.epochs == {"sst2": 4}
    assert "schedule sst2: 4 epochs chosen: map converged (+0.00), pst did not learn (+0.00)" in plan.decisions


def test_a_probe_run_far_below_the_best_of_its_length_judges_none(tmp_path):
    """STS-B's PST probe at 70% reached a Pearson of 9.61 (x100), 2 points above a constant's 0, against MaP's
    78.61: above the margin, but no run to judge a schedule by."""
    spec = load_spec(str(write_spec(tmp_path)))
    ledger = Ledger(spec)
    weak = lambda request: (0.30, 0.26) if request.method == "pst" else simulated_value(request)  # noqa: E731
    no_baseline = {"counts": {"0": 5, "1": 5}, "majority_share": 0.5}  # a constant scores 0, as on STS-B
    for _ in range(4):
        finish(spec, make_plan(spec, ledger), ledger, weak, no_baseline)
        ledger.reload()
    plan = make_plan(spec, ledger)
    assert "schedule sst2: 4 epochs chosen: map converged (+0.00), pst did not learn (-4.00)" in plan.decisions


def test_no_probe_run_learning_blocks(tmp_path):
    spec = load_spec(str(write_spec(tmp_path, schedule={"epochs": [2]})))
    ledger = Ledger(spec)
    for _ in range(3):
        finish(spec, make_plan(spec, ledger), ledger, lambda request: (0.5, 0.5))
        ledger.reload()
    plan = make_plan(spec, ledger)
    assert plan.epochs == {} and not plan.pending
    assert plan.blocked[0].startswith("sst2: no schedule-probe run learned at 2 epochs (map did not learn")


def test_no_candidate_length_converging_blocks_with_the_fix(tmp_path):
    spec = load_spec(str(write_spec(tmp_path)))
    ledger = Ledger(spec)
    gaining = lambda request: (0.7, 0.75)  # noqa: E731
    for _ in range(3):
        finish(spec, make_plan(spec, ledger), ledger, gaining)
        ledger.reload()
    plan = make_plan(spec, ledger)
    assert not plan.pending and plan.epochs == {}
    assert plan.blocked == [
        "sst2: no candidate length in schedule.epochs [2, 4] converged: add a longer one to the spec"
    ]


def test_dry_run_writes_where_it_stands(tmp_path, capsys):
    spec_path = write_spec(tmp_path)
    out = tmp_path / "protocol.md"
    assert main(["--spec", str(spec_path), "--dry-run", "--write", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out
    assert "| schedule | 0 | 1 | 0.1 |" in text, "one pending probe run at the spec's 9 minutes"
    assert "schedule: sst2 80% map lr 0.0001 seed 0 (2 ep)" in text


@pytest.mark.slow
def test_the_runner_starts_pending_runs_in_parallel_and_moves_on_when_they_end(tmp_path, monkeypatch):
    """run_protocol with a stand-in for pst-bench that writes the simulated record (tests/fake_pst_bench.py)."""
    spec = load_spec(str(write_spec(tmp_path, tasks=["sst2"])))
    use_fake_pst_bench(monkeypatch, tmp_path)
    assert run_protocol(spec, jobs=2, max_runs=4) == 0
    ledger = Ledger(spec)
    plan = make_plan(spec, ledger)
    assert sum(run.finished for run in plan.runs) >= 3 and plan.epochs == {"sst2": 4}
    assert len(list((tmp_path / "outputs" / "protocol").glob("*.log"))) == 4


def test_a_failed_run_is_reported_and_not_retried_in_the_same_call(tmp_path, monkeypatch, capsys):
    spec = load_spec(str(write_spec(tmp_path)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        execute, "_command", lambda spec, request: [sys.executable, "-c", "print('boom: no data'); raise SystemExit(3)"]
    )
    assert run_protocol(spec, jobs=1) == 1
    out = capsys.readouterr().out
    assert out.count("[protocol] start") == 1 and "FAILED" in out and "(exit 3): boom: no data" in out


def test_sigusr1_drains_the_runs_in_flight_and_starts_no_more(tmp_path, monkeypatch, capsys):
    """The first run signals its parent, then writes its record; the call ends after it, with work pending."""
    spec = load_spec(str(write_spec(tmp_path)))
    signal_then_run = (
        "import os, signal, subprocess, sys; os.kill(os.getppid(), signal.SIGUSR1); "
        "sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))"
    )
    use_fake_pst_bench(monkeypatch, tmp_path, "-c", signal_then_run)
    assert run_protocol(spec, jobs=1) == 0
    out = capsys.readouterr().out
    assert out.count("[protocol] start") == 1 and "[protocol] draining: 1 runs in flight" in out
    assert "[protocol] done" in out
    plan = make_plan(spec, Ledger(spec))
    assert sum(run.finished for run in plan.runs) == 1 and plan.pending, "its record written, the rest left"


def test_until_reads_a_clock_time_or_a_duration_and_refuses_anything_else():
    from datetime import datetime, timedelta, timezone

    from pst_bench.protocol.execute import parse_until

    now = datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)
    assert parse_until("15:30", now) == now.replace(hour=15, minute=30)
    assert parse_until("13:30", now) == now.replace(hour=13, minute=30) + timedelta(days=1), "passed: tomorrow's"
    assert parse_until("90m", now) == now + timedelta(minutes=90)
    assert parse_until("2.5h", now) == now + timedelta(hours=2, minutes=30)
    for bad in ("3pm", "0m", "-1h", "", "25:00"):
        with pytest.raises(ConfigError, match="HH:MM"):
            parse_until(bad, now)


def test_until_starts_only_runs_estimated_to_end_before_it(tmp_path, monkeypatch, capsys):
    """STS-B's schedule probe comes first but is estimated at 100 minutes: with 30 minutes left SST-2's
    (1 minute) starts instead; with 1 minute left (1.2 minutes needed with the margin) nothing starts."""
    from datetime import datetime, timedelta

    path = write_spec(
        tmp_path,
        tasks=["stsb", "sst2"],
        schedule={"sparsity": {"sst2": 0.8, "stsb": 0.8}},
        minutes_per_run={"sst2": 1.0, "stsb": 100.0},
    )
    spec = load_spec(str(path))
    use_fake_pst_bench(monkeypatch, tmp_path)
    first = make_plan(spec, Ledger(spec)).pending[0].request
    assert first.task == "stsb", "priority order would start STS-B's probe first"
    now = datetime.now().astimezone()
    assert run_protocol(spec, jobs=1, until=now + timedelta(minutes=1)) == 0
    out = capsys.readouterr().out
    assert "[protocol] start" not in out and "would end before it (1.2x its estimate)" in out
    assert run_protocol(spec, jobs=2, max_runs=1, until=now + timedelta(minutes=30)) == 0
    out = capsys.readouterr().out
    assert out.count("[protocol] start") == 1 and "start schedule: sst2 80% map" in out


@pytest.mark.parametrize(("given", "expected"), [(None, "2"), ("3", "3")])
def test_runs_share_the_cores_unless_the_caller_set_their_threads(tmp_path, monkeypatch, given, expected):
    """Two runs at once on four cores get two threads each; an OMP_NUM_THREADS of the caller's wins."""
    spec = load_spec(str(write_spec(tmp_path)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(execute, "_cores", lambda: 4)
    if given is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", given)
    seen = tmp_path / "threads.txt"
    monkeypatch.setattr(
        execute,
        "_command",
        lambda spec, request: [
            sys.executable,
            "-c",
            f"import os; open({str(seen)!r}, 'a').write(os.environ['OMP_NUM_THREADS'] + '\\n')",
        ],
    )
    assert run_protocol(spec, jobs=2, max_runs=2) == 0
    assert seen.read_text().split() == [expected, expected]


def test_the_command_refuses_a_dirty_checkout(tmp_path, monkeypatch, capsys):
    import pst_bench.protocol.__main__ as cli

    monkeypatch.setattr(cli, "git_dirty", lambda: True)
    assert main(["--spec", str(write_spec(tmp_path))]) == 2
    assert "uncommitted changes" in capsys.readouterr().err


def test_python_m_pst_bench_protocol_help_runs():
    result = subprocess.run([sys.executable, "-m", "pst_bench.protocol", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--dry-run" in result.stdout
    assert "--spec" in result.stdout


def test_the_estimate_scales_finished_runs_minutes_per_step_to_the_pending_runs_length(tmp_path):
    spec = load_spec(str(write_spec(tmp_path)))
    ledger = Ledger(spec)
    plan = make_plan(spec, ledger)
    first = plan.pending[0].request
    assert execute.minutes_per_run(spec, ledger, first) == 9.0, "nothing finished: the spec's SST-2 estimate"
    finish(spec, plan, ledger)  # fake records: 30 steps (10 an epoch) in 1 s
    ledger.reload()
    later = make_plan(spec, ledger).pending[0].request  # MaP at 4 epochs: 40 steps
    assert later.epochs == 4 and execute.minutes_per_run(spec, ledger, later) == pytest.approx(40 / 30 / 60)


def test_a_penalty_search_that_never_lands_stops_after_its_tries_and_says_so(tmp_path):
    from pst_bench.protocol.plan import _Planner
    from pst_bench.record import as_record

    spec = load_spec(str(write_spec(tmp_path, soft_movement={"task": "sst2", "max_tries": 3, "tolerance": 0.001})))
    ledger = Ledger(spec)
    mvp = as_record(fake_record(["model=minilm-l6", "task=sst2", "method=mvp", "train.lr=3e-4"], dev=0.7))
    for _ in range(4):
        planner = _Planner(spec, ledger)
        planner.plan.epochs = {"sst2": 4}
        planner.soft_movement({("sst2", 0.9, "mvp"): mvp})
        finish(spec, planner.plan, ledger)
        ledger.reload()
    lambdas = [round(float(run.request.extra[0].split("=")[1])) for run in planner.plan.runs]
    assert lambdas == [400, 1600, 800] and {run.request.lr for run in planner.plan.runs} == {3e-4}
    assert planner.plan.decisions == [
        "soft movement sst2 90%: no λ within 0.1 points after 3 tries (λ 400: 80.00%, λ 800: 88.89%, "
        "λ 1600: 94.12%): no held-out seeds; raise soft_movement.max_tries or widen the tolerance"
    ]


def test_the_estimate_matches_a_request_to_records_by_the_method_kind_its_config_composes_to(tmp_path):
    spec = load_spec(str(write_spec(tmp_path)))
    ledger = Ledger(spec)
    request = make_plan(spec, ledger).pending[0].request
    variant = replace(request, method="pst_mag_ab")
    oneshot = replace(request, method="wanda_oneshot")
    assert ledger.kind(variant) == "pst" and ledger.kind(oneshot) == "wanda"


@pytest.mark.parametrize(
    ("spread", "first", "expected"),
    [
        (0.0, 5, 5),  # no spread: the first stage decides
        (0.3, 5, 5),  # (2.776 x 0.3 / 1)^2 = 0.69: five are enough
        (0.9, 5, 7),  # (2.776 x 0.9)^2 = 6.24 -> 7
        (1.7, 5, 10),  # SST-2's archived paired SD: 22.3 -> the cap
    ],
)
def test_steins_rule_counts_seeds_from_the_spread_alone(spread, first, expected):
    from pst_bench.protocol.seeds import paired_spread, stein_seed_count

    # differences with the given sample SD around two different means: the count is the same for both
    centred = [
        spread * z for z in (-1.2649110640673518, -0.6324555320336759, 0.0, 0.6324555320336759, 1.2649110640673518)
    ]
    for mean in (0.0, -3.0):
        differences = [mean + d for d in centred[:first]]
        assert paired_spread(differences) == pytest.approx(spread)
        assert stein_seed_count(paired_spread(differences), first, half_width=1.0, max_seeds=10) == expected


@pytest.mark.slow  # the small protocol twice over, about 80 hand-made records
def test_a_cell_whose_paired_differences_spread_gets_more_seeds_for_every_method(tmp_path):
    """PST's held-out values swing 2 points from seed to seed: with three first seeds and t(0.975, 2) = 4.30,
    Stein's rule asks for far more than the cap of five, so map, mvp and pst run seeds 4 and 5 at both cells;
    with no swing (the default simulation) nobody does."""
    rule = {"pairs": [["pst", "map"]], "half_width": 1.0, "max_seeds": 5}

    def swinging(request):
        dev, final = simulated_value(request)
        swing = 0.02 * (-1) ** request.seed if request.method == "pst" and request.seed else 0.0
        return dev + swing, final + swing

    for name in ("swing", "calm"):
        (tmp_path / name).mkdir()
    spec = load_spec(str(write_spec(tmp_path / "swing", heldout_seeds=[1, 2, 3], more_seeds=rule)))
    plan, _ = run_to_the_end(spec, value_of=swinging)
    stages = [r.request.stage for r in plan.runs]
    held = {
        (r.request.method, r.request.sparsity, r.request.seed)
        for r in plan.runs
        if r.request.stage in ("2", "more seeds")
    }
    for method in ("map", "mvp", "pst"):
        for sparsity in (0.7, 0.8):
            assert {(method, sparsity, seed) for seed in (1, 2, 3, 4, 5)} <= held
    assert not {key for key in held if key[0] == "finetune" and key[2] > 3}, "dense keeps the first seeds"
    assert any(d.startswith("seeds sst2 70%: paired SD pst − map 2.31") and "-> 5 seeds" in d for d in plan.decisions)
    # the extra seeds once every claim has its first ones (claim 2's, the ablation's), before issue 24's runs
    extra = [i for i, stage in enumerate(stages) if stage == "more seeds"]
    assert len(extra) == 3 * 2 * 2, "seeds 4 and 5 of map, mvp and pst at both cells"
    assert max(i for i, stage in enumerate(stages) if stage in ("2", "claim 2", "claims 3-4")) < min(extra)
    assert max(extra) < min(i for i, r in enumerate(plan.runs) if r.request.method in ("soft_mvp", "sparsegpt"))

    calm = load_spec(str(write_spec(tmp_path / "calm", heldout_seeds=[1, 2, 3], more_seeds=rule)))
    plan, _ = run_to_the_end(calm)
    assert max(r.request.seed for r in plan.runs if r.request.stage == "2") == 3
    assert not [r for r in plan.runs if r.request.stage == "more seeds"]
    assert any(d.startswith("seeds sst2 70%: paired SD pst − map 0.00") and "-> 3 seeds" in d for d in plan.decisions)
