"""Progress reporting: a tqdm bar on a terminal, periodic plain log lines in cluster logs."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


class Progress:
    """Shows epoch, step, loss and the latest validation perplexity of one run.

    On a terminal a tqdm bar is redrawn every step. Otherwise (Slurm log files) one line is
    written every ``log_every`` steps (0: about every 30 s, at least every 10 % of the run) and at
    every evaluation, so logs stay short but show that the run is alive.
    """

    def __init__(
        self,
        run_id: str,
        total_steps: int,
        steps_per_epoch: int,
        start_step: int = 0,
        log_every: int = 0,
        stream: TextIO | None = None,
    ):
        self.run_id = run_id
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.stream = stream if stream is not None else sys.stderr
        self.log_every = log_every
        self.val_ppl = math.nan
        self._last_line = time.monotonic()
        self._bar = None
        if getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps, initial=start_step, desc=run_id, unit="step", file=self.stream
            )

    def _epoch(self, step: int) -> float:
        return step / self.steps_per_epoch

    def step(self, step: int, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                epoch=f"{self._epoch(step):.2f}", loss=f"{loss:.4f}", val_ppl=f"{self.val_ppl:.2f}"
            )
            return
        now = time.monotonic()
        if self.log_every:
            due = step % self.log_every == 0
        else:
            due = now - self._last_line > 30 or step % max(1, self.total_steps // 10) == 0
        if due:
            self._line(f"step {step}/{self.total_steps} loss {loss:.4f}", step)

    def evaluation(self, step: int, val_ppl: float) -> None:
        self.val_ppl = val_ppl
        if self._bar is None:
            self._line(f"step {step}/{self.total_steps} val_ppl {val_ppl:.3f}", step)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(f"[{self.run_id}] {text}", file=self.stream)
        else:
            print(f"[{self.run_id}] {text}", file=self.stream, flush=True)

    def _line(self, text: str, step: int) -> None:
        self._last_line = time.monotonic()
        print(f"[{self.run_id}] epoch {self._epoch(step):.2f} {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
