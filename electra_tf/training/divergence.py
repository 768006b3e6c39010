"""Divergence, seen early: a loss that climbs by orders of magnitude, and non-finite state.

A diverging run first shows a loss that grows by powers of ten and only later NaN; by then
Adam's slots may already be infinite while the loss is still finite. So the loss is watched
as it goes, and every weight and slot is checked before it is saved: a checkpoint on disk
is always finite, and it is never rotated out by a non-finite one.
"""

import math

import tensorflow as tf


class LossWatch:
    """Reports a loss that rises by a factor of `factor` (or more) over its lowest value.

    Args:
        log: receives the warning lines.
        factor: how many times the lowest loss counts as diverging; each further factor
            is reported again.
        hint: appended to the warning (what to do about it).
    """

    def __init__(self, log=print, factor=100.0, hint=""):
        self.log, self.factor, self.hint = log, factor, hint
        self.lowest = None  # (loss, step)
        self.reported = None  # the loss level last reported

    def update(self, step, loss):
        """Takes the loss of `step`; returns the warning it logged, if any."""
        if not math.isfinite(loss):
            return None
        if self.lowest is None or loss < self.lowest[0]:
            self.lowest = (loss, step)
            self.reported = None
            return None
        low, low_step = self.lowest
        level = self.reported or low
        if low <= 0 or loss < self.factor * level:
            return None
        self.reported = loss
        warning = (f"Warning: loss {loss:.4g} at step {step} is {loss / low:.3g} times its "
                   f"lowest ({low:.4g} at step {low_step}): the run is diverging{self.hint}")
        self.log(warning)
        return warning


def non_finite(variables):
    """The names of the variables holding NaN or infinity.

    Args:
        variables: {name: tf.Variable}; non-float variables are skipped.
    Returns:
        The sorted names whose values are not all finite.
    """
    names = sorted(n for n, v in variables.items() if tf.as_dtype(v.dtype).is_floating)
    if not names:
        return []
    flags = _all_finite([variables[n] for n in names]).numpy()
    return [n for n, ok in zip(names, flags) if not ok]


@tf.function
def _all_finite(variables):
    return tf.stack([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))
                     for v in variables])
