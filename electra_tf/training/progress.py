"""Progress output of training loops: step, losses, steady-state throughput, elapsed, ETA.

The first call of a training loop traces (and may compile) it, which takes longer than any
later one; a rate averaged from the start would make early ETAs wrong. So the rate is
measured from the first report on: the first report shows none.
"""

import contextlib
import datetime
import sys
import time

import keras


def hms(seconds):
    """`0:01:05` for 65.9 seconds."""
    return str(datetime.timedelta(seconds=int(seconds)))


def progress_line(step, total, losses, elapsed, seq_per_sec=None, eta=None):
    """`step 40/100 (40.0%) | loss 13.1 mlm_loss 2.1 | 15.6 seq/s | elapsed 0:00:13 |
    ETA 0:00:20`; without a rate yet, `| elapsed 0:00:05 (tracing) | seq/s from the next
    report`.

    Args:
        step, total: steps done and to do.
        losses: {name: float} to show.
        elapsed: seconds since the loop started.
        seq_per_sec: the steady-state throughput, or None before it is known.
        eta: seconds left, or None.
    Returns:
        The line.
    """
    line = (f"step {step}/{total} ({100.0 * step / max(total, 1):.1f}%) | "
            + " ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    if seq_per_sec is None:
        return line + f" | elapsed {hms(elapsed)} (tracing) | seq/s from the next report"
    return line + (f" | {seq_per_sec:.1f} seq/s | elapsed {hms(elapsed)}"
                   + (f" | ETA {hms(eta)}" if eta is not None else ""))


class Progress:
    """Reports a training loop: a Keras progress bar on a terminal (`bar=True`), else a
    `progress_line` every `every` steps and at the last one, as the original's ETAHook.

    The throughput counts from the first `update` on (the first loop call traces the
    loop), leaving out time spent in `paused()` blocks (e.g. eval during training).

    Args:
        total: the last step.
        batch_size: sequences per step (for seq/s).
        start_step: the step the loop starts at (a resumed run).
        every: steps between lines.
        bar: use a progress bar when standard output is a terminal.
        log: a function taking a line.
        clock: a function returning seconds (tests inject one).

    Example:
    ```python
    report = Progress(total=100, batch_size=8, log=print)
    report.update(1, {"loss": 3.2})   # no rate yet: the first call traced the loop
    report.update(2, {"loss": 3.1})   # 8 seq per (time since update 1)
    report.seq_per_sec                # the steady-state rate, None before the 2nd update
    ```
    """

    def __init__(self, total, batch_size, start_step=0, every=1, bar=False, log=print,
                 clock=time.monotonic):
        self.total, self.batch_size, self.every = total, batch_size, every
        self.start_step, self.log, self.clock = start_step, log, clock
        self.start = clock()
        self.first = None  # (step, time) of the first update: where the rate starts
        self.last = None  # (step, time, seconds excluded by then) of the latest update
        self.excluded = 0.0  # seconds spent in `paused()` since the first update
        self.bar = (keras.utils.Progbar(total, stateful_metrics=["loss"])
                    if bar and sys.stdout.isatty() else None)

    @property
    def elapsed(self):
        """Seconds since the loop started (wall time, everything included)."""
        return self.clock() - self.start

    @property
    def seq_per_sec(self):
        """The steady-state sequences per second, None before the second update."""
        if self.first is None or self.last[0] <= self.first[0]:
            return None
        seconds = self.last[1] - self.first[1] - self.last[2]
        return (self.last[0] - self.first[0]) * self.batch_size / max(seconds, 1e-9)

    def eta(self):
        """Seconds left at the steady-state rate, None before it is known."""
        rate = self.seq_per_sec
        if rate is None:
            return None
        return (self.total - self.last[0]) * self.batch_size / max(rate, 1e-9)

    @contextlib.contextmanager
    def paused(self):
        """A context whose time does not count towards the throughput."""
        begin = self.clock()
        try:
            yield
        finally:
            if self.first is not None:
                self.excluded += self.clock() - begin

    def update(self, step, losses):
        """Reports `losses` ({name: float}) after `step`."""
        now = self.clock()
        if self.first is None:
            self.first = (step, now)
        self.last = (step, now, self.excluded)
        if self.bar is not None:
            self.bar.stateful_metrics.update(losses)  # current values, not running means
            self.bar.update(step, list(losses.items()))
        elif step % self.every == 0 or step == self.total:
            self.log(progress_line(step, self.total, losses, now - self.start,
                                   self.seq_per_sec, self.eta()))
