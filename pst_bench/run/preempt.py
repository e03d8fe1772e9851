"""Stopping cleanly when the scheduler says so: SIGTERM, SIGUSR1, SIGUSR2 mean "checkpoint and exit".

SLURM sends SIGTERM before it kills a job at its time limit or on preemption, and SIGUSR1 (or whatever
``--signal=<sig>@<seconds>`` asks for) ahead of it; submitit asks for SIGUSR2. While a run trains,
``StopSignals`` turns any of them into a flag; the loop finishes the optimizer step it is in, writes a
checkpoint, then hands the signal to the handler that was there before (submitit's: it requeues the job
and exits) and otherwise raises ``Preempted``. Rerunning the same command resumes from that checkpoint
exactly (``hydra/launcher=submitit_slurm_requeue`` requeues for you). Outside the loop the previous
handlers are back.
"""

from __future__ import annotations

import signal
import threading

from ..errors import PstBenchError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class Preempted(PstBenchError):
    """The run stopped on a signal after writing a checkpoint; rerun the same command to resume."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by that signal


class StopSignals:
    """``with StopSignals() as stop:`` ``stop.requested`` is the first stop signal received, or None."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signals = tuple(signals)
        self.requested: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested is None:
            self.requested = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def pass_on(self) -> None:
        """Restore the previous handlers and call the one of the signal received, if it was a function
        (submitit's requeue handler exits the process; Python's default handlers are not functions)."""
        previous = self._previous.get(self.requested)
        self.__exit__()
        if callable(previous):
            previous(self.requested, None)

    @property
    def name(self) -> str:
        return signal.Signals(self.requested).name if self.requested else ""
