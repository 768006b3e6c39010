"""Progress output of training loops: step, losses, throughput, elapsed time and ETA."""

import datetime
import sys
import time

import keras


def _hms(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))


def progress_line(step, total, start_step, elapsed, batch_size, losses):
    """`step 40/100 (40.0%) loss 1.2345 | 12.3 seq/s | elapsed 0:00:13 ETA 0:00:20`.

    Args:
        step, total: steps done and to do; start_step: the step this run started at.
        elapsed: seconds since it started; batch_size: sequences per step.
        losses: {name: float} to show.
    """
    rate = (step - start_step) / max(elapsed, 1e-9)
    eta = (total - step) / max(rate, 1e-9)
    return (f"step {step}/{total} ({100.0 * step / total:.1f}%) "
            + " ".join(f"{k} {v:.4f}" for k, v in losses.items())
            + f" | {rate * batch_size:.1f} seq/s | elapsed {_hms(elapsed)} ETA {_hms(eta)}")


class Progress:
    """Reports a training loop: a Keras progress bar on a terminal (`bar=True`), else a
    `progress_line` every `every` steps and at the last one, as the original's ETAHook.

    Args:
        total: the last step.
        batch_size: sequences per step (for seq/s).
        start_step: the step the loop starts at (a resumed run).
        every: steps between lines.
        bar: use a progress bar when standard output is a terminal.
        log: a function taking a line.
    """

    def __init__(self, total, batch_size, start_step=0, every=1, bar=False, log=print):
        self.total, self.batch_size, self.every = total, batch_size, every
        self.start_step, self.start, self.log = start_step, time.time(), log
        self.bar = (keras.utils.Progbar(total, stateful_metrics=["loss"])
                    if bar and sys.stdout.isatty() else None)

    def update(self, step, losses):
        """Reports `losses` ({name: float}) after `step`."""
        if self.bar is not None:
            self.bar.update(step, list(losses.items()))
        elif step % self.every == 0 or step == self.total:
            self.log(progress_line(step, self.total, self.start_step,
                                   time.time() - self.start, self.batch_size, losses))
