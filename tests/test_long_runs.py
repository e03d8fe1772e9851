"""Long runs: tracking (TensorBoard), mask diagnostics, signal -> checkpoint -> resume, one process per run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT, Interrupt, compose_cfg, die_after_checkpoint, run, tiny_run_overrides
from pst_bench.errors import ConfigError


def _scalars(log_dir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[str, list] = {}
    for events in log_dir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            values.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return values


# -- tracking and diagnostics ---------------------------------------------------------------------------
def test_tensorboard_gets_step_eval_and_per_matrix_diagnostics(tiny_runs):
    record = tiny_runs.get("pst")  # the session's tiny PST run: diagnostics every 2 steps, TensorBoard on
    log_dir = tiny_runs.log_dir / record["run_id"]
    scalars = _scalars(log_dir)
    total = record["steps"]["total"]
    assert [step for step, _ in sorted(scalars["train/loss"])] == list(range(1, total + 1))
    assert {"train/lr", "train/sparsity_target", "eval/validation/accuracy", "eval/validation/main"} <= set(scalars)
    assert max(value for _, value in scalars["train/sparsity_target"]) == pytest.approx(0.5)
    layer = next(iter(record["sparsity_achieved"]["per_matrix"]))
    for key in ("sparsity", "flip_rate", "norm_mag", "norm_ab", "norm_rc", "norm_uv", "share_ab"):
        assert f"diagnostics/{layer}/{key}" in scalars and f"diagnostics/mean/{key}" in scalars
    hparams = (next(log_dir.rglob("hparams.yml"))).read_text()  # the resolved config, as hyperparameters
    assert "train.lr" in hparams and "method.r1" in hparams
    # the record's history: every 2 steps and the last, flip rates from the second measurement on
    diagnostics = record["diagnostics"]
    assert [d["step"] for d in diagnostics] == list(range(2, total + 1, 2))
    assert "flip_rate" not in diagnostics[0]["mean"] and all("flip_rate" in d["mean"] for d in diagnostics[1:])
    shares = diagnostics[-1]["mean"]
    assert shares["share_mag"] + shares["share_ab"] + shares["share_rc"] == pytest.approx(1.0)
    assert diagnostics[-1]["mean"]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert any(d["mean"]["flip_rate"] > 0 for d in diagnostics[1:]), "the masks never moved"


def test_tracking_off_writes_no_logs_and_an_unknown_tracker_is_one_line(tmp_path, synthetic_data):
    cfg = compose_cfg(tiny_run_overrides(synthetic_data, "map", "train.log_with=none"), tmp_path)
    record = run(cfg)
    assert not (tmp_path / "logs").exists() and record["diagnostics"], "diagnostics stay in the record"
    from pst_bench.run.tracking import tracker_names

    with pytest.raises(ConfigError, match="unknown tracker"):
        tracker_names("tensorbored")
    assert tracker_names("tensorboard, wandb") == ["tensorboard", "wandb"] and tracker_names("none") == []


def test_tracking_keys_do_not_change_the_run_id(synthetic_data):
    from pst_bench.record import run_id

    base = tiny_run_overrides(synthetic_data, "pst")
    assert run_id(compose_cfg(base)) == run_id(
        compose_cfg([*base, "train.log_with=none", "train.diagnostics_every_steps=7"])
    )


def test_the_mask_dynamics_figure_is_drawn_from_records_with_diagnostics(tmp_path, tiny_runs):
    from pst_bench.report.figures import make_figures

    runs = tiny_runs.folder(tmp_path / "runs", ("map", 0.5), ("mvp", 0.5), ("pst", 0.5))
    written, skipped = make_figures(runs, tmp_path / "figures", sparsity=0.5)
    assert tmp_path / "figures" / "fig_mask_dynamics_p50.png" in written, skipped


# -- preemption -------------------------------------------------------------------------------------------
def test_a_signal_mid_epoch_checkpoints_and_the_rerun_gives_the_uninterrupted_record(tmp_path, tiny_runs, monkeypatch):
    from pst_bench.run import loop
    from pst_bench.run.checkpoint import latest_checkpoint
    from pst_bench.run.preempt import Preempted

    overrides = tiny_runs.overrides("pst")
    reference = tiny_runs.get("pst")  # the same run, uninterrupted (trained once per session)

    real_log_step = loop.TrainingLoop._log_step

    def signal_at_step_5(self, loss):
        real_log_step(self, loss)
        if self.state.global_step == 5:  # epoch 1 has 6 steps
            os.kill(os.getpid(), signal.SIGUSR1)

    monkeypatch.setattr(loop.TrainingLoop, "_log_step", signal_at_step_5)
    cfg = compose_cfg(overrides, tmp_path / "cut")
    with pytest.raises(Preempted) as stopped:
        run(cfg)
    assert stopped.value.exit_status == 128 + signal.SIGUSR1 and "SIGUSR1 after step 5" in str(stopped.value)
    assert latest_checkpoint(tmp_path / "cut" / "checkpoints" / reference["run_id"]).name == "step-5"
    assert not list((tmp_path / "cut" / "results" / "runs").glob("*.json"))
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL, "the loop's handlers are gone after it"
    monkeypatch.setattr(loop.TrainingLoop, "_log_step", real_log_step)

    resumed = run(cfg)
    assert [e["eval"] for e in resumed["epochs"]] == [e["eval"] for e in reference["epochs"]]
    assert resumed["diagnostics"] == reference["diagnostics"], "flip rates survive the checkpoint"


def test_a_signal_goes_on_to_the_previous_handler_after_the_checkpoint(tmp_path, synthetic_data, monkeypatch):
    """Under submitit its SIGUSR2 handler requeues the job and exits: it must run after our checkpoint."""
    from pst_bench.run import loop
    from pst_bench.run.checkpoint import latest_checkpoint

    seen = {}

    def submitit_like(signum, frame):
        run_dir = next((tmp_path / "checkpoints").iterdir())
        seen["checkpoint"] = latest_checkpoint(run_dir).name
        raise SystemExit(-1)  # what submitit's handler does after requeueing

    real_log_step = loop.TrainingLoop._log_step

    def signal_at_step_3(self, loss):
        real_log_step(self, loss)
        if self.state.global_step == 3:
            os.kill(os.getpid(), signal.SIGUSR2)

    monkeypatch.setattr(loop.TrainingLoop, "_log_step", signal_at_step_3)
    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        with pytest.raises(SystemExit):
            run(compose_cfg(tiny_run_overrides(synthetic_data, "pst"), tmp_path))
        assert seen == {"checkpoint": "step-3"}
        assert signal.getsignal(signal.SIGUSR2) is submitit_like, "the previous handler is back"
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_sigterm_to_the_cli_checkpoints_and_exits_with_status_143(tmp_path, synthetic_data):
    command = [
        sys.executable,
        "-m",
        "pst_bench.cli",
        *tiny_run_overrides(synthetic_data, "pst", "train.epochs=400", "train.checkpoint_every_steps=1"),
        "train.progress_bar=false",
        f"paths.results_dir={tmp_path}/runs",
        f"paths.checkpoint_dir={tmp_path}/ckpt",
        f"paths.log_dir={tmp_path}/logs",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "ckpt").glob("*/latest")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    assert "stopped by SIGTERM after step" in stderr and "Rerun the same command to resume" in stderr
    (latest,) = (tmp_path / "ckpt").glob("*/latest")
    progress = json.loads((latest.parent / latest.read_text().strip() / "progress.json").read_text())
    assert progress["global_step"] >= 1 and not list((tmp_path / "runs").glob("*.json"))


def test_the_requeue_launcher_config_composes_with_submitits_slurm_launcher():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=["hydra/launcher=submitit_slurm_requeue"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.max_num_timeout == 20
    assert launcher.signal_delay_s == 180 and launcher.additional_parameters.requeue is True


# -- faults of a shared file system -----------------------------------------------------------------------
def _interrupted_at_step(monkeypatch, cfg, step: int) -> None:
    """Run ``cfg`` until the checkpoint of ``step`` is written, then die (as a killed node would)."""
    import pst_bench.run.checkpoint as ckpt

    real_save = die_after_checkpoint(monkeypatch, step)
    with pytest.raises(Interrupt):
        run(cfg)
    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)


def _truncate_every_file(folder: Path) -> None:
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes()[:5])  # what a node dying mid-flush leaves


def test_a_truncated_last_checkpoint_resumes_from_the_one_before(tmp_path, tiny_runs, monkeypatch, caplog):
    from pst_bench.run.checkpoint import checkpoint_folders

    overrides = tiny_runs.overrides("pst", None, "train.checkpoint_every_steps=2")
    reference = tiny_runs.get("pst")  # the same run, uninterrupted (checkpoints never change a run's id)
    cfg = compose_cfg(overrides, tmp_path / "cut")
    _interrupted_at_step(monkeypatch, cfg, 8)
    run_dir = tmp_path / "cut" / "checkpoints" / reference["run_id"]
    assert [f.name for f in checkpoint_folders(run_dir)] == ["step-8", "step-6"], "the last two are kept"
    _truncate_every_file(run_dir / "step-8")

    resumed = run(cfg)
    assert "step-8/trainable.safetensors is unreadable" in caplog.text and "resuming from step-6" in caplog.text
    assert [e["eval"] for e in resumed["epochs"]] == [e["eval"] for e in reference["epochs"]]
    assert (run_dir / "latest").read_text().strip() == "step-12"
    assert sorted(f.name for f in run_dir.glob("step-*")) == ["step-10", "step-12"], "the unreadable one is gone"


def test_no_readable_checkpoint_names_the_file_and_starts_afresh_only_when_told(tmp_path, synthetic_data, monkeypatch):
    from pst_bench.run.checkpoint import CheckpointUnreadable

    overrides = tiny_run_overrides(synthetic_data, "map", "train.checkpoint_every_steps=2")
    cfg = compose_cfg(overrides, tmp_path)
    _interrupted_at_step(monkeypatch, cfg, 4)
    (run_dir,) = (tmp_path / "checkpoints").iterdir()
    for folder in run_dir.glob("step-*"):
        _truncate_every_file(folder)
    (run_dir / "latest").write_text("")  # the pointer too
    with pytest.raises(CheckpointUnreadable) as unreadable:
        run(cfg)
    message = str(unreadable.value)
    assert "\n" not in message and "train.resume=false" in message
    assert "step-4/trainable.safetensors is unreadable (5 bytes)" in message and "step-2/trainable" in message
    assert not list((tmp_path / "results" / "runs").glob("*.json"))

    record = run(compose_cfg([*overrides, "train.resume=false"], tmp_path))
    assert record["status"] == "finished" and record["run_id"] == run_dir.name


def test_the_cli_reports_an_unreadable_checkpoint_in_one_line(tmp_path, synthetic_data):
    from pst_bench.record import run_id

    overrides = [
        *tiny_run_overrides(synthetic_data, "map"),
        f"paths.results_dir={tmp_path}/runs",
        f"paths.checkpoint_dir={tmp_path}/ckpt",
        f"paths.log_dir={tmp_path}/logs",
    ]
    run_dir = tmp_path / "ckpt" / run_id(compose_cfg(overrides))
    (run_dir / "step-6").mkdir(parents=True)
    for name in ("trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "progress.json"):
        (run_dir / "step-6" / name).write_bytes(b"\0" * 5)
    (run_dir / "latest").write_text("step-6\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pst_bench.cli", *overrides], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("pst-bench: error:")]
    assert "step-6/trainable.safetensors is unreadable" in line and "train.resume=false" in line
    assert "Traceback" not in done.stderr


# -- one process per run -----------------------------------------------------------------------------------
HOLD = (
    "import sys, time; from pst_bench.run.lock import acquire; "
    "acquire(sys.argv[1]); print('held', flush=True); time.sleep(120)"
)


def test_a_second_process_on_the_same_run_stops_and_a_dead_holders_lock_is_taken_over(tmp_path, synthetic_data, caplog):
    from pst_bench.record import run_id
    from pst_bench.run.lock import RunLocked

    cfg = compose_cfg(tiny_run_overrides(synthetic_data, "map"), tmp_path)
    run_dir = tmp_path / "checkpoints" / run_id(cfg)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked) as locked:
            run(cfg)
        message = str(locked.value)
        assert f"pid {holder.pid}" in message and "\n" not in message and str(run_dir / "run.lock") in message
    finally:
        holder.kill()
        holder.wait()
    record = run(cfg)  # the holder is gone: its lock is taken over, with a warning
    assert record["status"] == "finished" and "taking over the lock" in caplog.text
    assert not (run_dir / "run.lock").exists(), "a finished run releases its lock"


def test_an_empty_lock_is_stale_after_the_grace_period(tmp_path, caplog):
    from pst_bench.run import lock

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    empty = run_dir / lock.LOCK_NAME
    empty.write_text("")  # a process killed between creating the lock and writing it
    with pytest.raises(lock.RunLocked, match="names no holder yet.*stale after 60 s") as young:
        lock.acquire(run_dir)
    assert "\n" not in str(young.value)
    old = time.time() - lock.EMPTY_GRACE_S - 1
    os.utime(empty, (old, old))
    with lock.run_lock(run_dir) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "names no holder" in caplog.text and not empty.exists()
    half = '{"pid": 12'  # half-written: the same
    empty.write_text(half)
    os.utime(empty, (old, old))
    assert lock.acquire(run_dir) == empty and json.loads(empty.read_text())["pid"] == os.getpid()
    assert not list(run_dir.glob(".run.lock.*")), "no temporary file is left"
