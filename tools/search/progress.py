"""The rich progress view of a search: trials done / running / failed, the best feasible so far.

A Ray Tune callback, so it runs in the driver and sees every trial's reports as they arrive.
"""

from __future__ import annotations

import time
from typing import Any

from ray import tune
from rich.console import Group
from rich.live import Live
from rich.progress import MofNCompleteColumn
from rich.text import Text

from tinyae import terminal


class ProgressView(tune.Callback):
    """Counts of trials by outcome and the best feasible trial, redrawn on every event."""

    def __init__(self, total: int, metric: str, already: list[dict] | None = None) -> None:
        self.total = total
        self.metric = metric
        self.final: dict[str, dict] = {}
        self.running: set[str] = set()
        self.best: dict | None = None
        for row in already or []:
            self._count(row["trial_id"], row)
        self.progress = terminal.progress(MofNCompleteColumn(), description="search")
        self.task = self.progress.add_task("trials", total=total, completed=len(self.final))
        self.live = Live(
            self._render(), console=terminal.console(stderr=True), refresh_per_second=4, transient=False
        )
        self.started = time.perf_counter()
        self.inert = False

    def __getstate__(self) -> dict:
        return {"inert": True}  # Ray saves its run config with the experiment; the view stays here

    def __setstate__(self, state: dict) -> None:
        self.inert = True

    def _count(self, trial_id: str, res: dict[str, Any]) -> None:
        self.final[trial_id] = res
        if res.get("status") == "ok" and (self.best is None or res["objective"] > self.best["objective"]):
            self.best = res

    def _render(self) -> Group:
        by: dict[str, int] = {}
        for r in self.final.values():
            by[r.get("status", "failed")] = by.get(r.get("status", "failed"), 0) + 1
        counts = Text(
            f"done {len(self.final)} of {self.total}: ok {by.get('ok', 0)}, "
            f"infeasible {by.get('infeasible', 0)}, "
            f"stopped early {by.get('stopped', 0)}, failed {by.get('failed', 0)}; running {len(self.running)}"
        )
        if self.best is None:
            best = Text("best feasible so far: none yet")
        else:
            b = self.best
            best = Text(
                f"best feasible so far: {self.metric} {b['objective']:.4f}  {b.get('shape', '')}  window "
                f"{b.get('window')}  flash {b['flash']:,} B  RAM {b['ram']:,} B  "
                f"{b['instructions']:,} instr/window"
            )
        return Group(self.progress, counts, best)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.update(self._render())
        self.live.stop()

    def _refresh(self) -> None:
        if self.inert:
            return
        self.progress.update(self.task, completed=len(self.final))
        self.live.update(self._render())

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.inert:
            return
        self.running.add(trial.trial_id)
        self._refresh()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.inert:
            return
        if result.get("phase") == "final":
            self._count(trial.trial_id, result)
        self._refresh()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.inert:
            return
        self.running.discard(trial.trial_id)
        if trial.trial_id not in self.final:
            self.final[trial.trial_id] = {"status": "stopped"}
        self._refresh()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.inert:
            return
        self.running.discard(trial.trial_id)
        self.final[trial.trial_id] = {"status": "failed"}
        self._refresh()
