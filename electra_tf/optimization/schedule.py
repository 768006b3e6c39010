"""The original learning-rate schedule: warm-up times polynomial decay."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr·(1 − min(t, T)/T)^power · min(1, t/warmup), warmup = max(T·proportion, steps).

    The warm-up *multiplies* the decaying LR: at t = warmup the LR is
    lr·(1 − warmup/T), and at t = 0 it is 0. Computed in float32 with the op order of
    `tf.train.polynomial_decay` followed by the original's warm-up factor.

    Args:
        learning_rate: the peak LR before decay.
        num_train_steps: T, the step at which the LR reaches 0.
        warmup_steps, warmup_proportion: the warm-up is the larger of the two, in steps.
        power: the polynomial decay power (`lr_decay_power`; 1.0 is linear).

    Example:
    ```python
    schedule = WarmupPolynomialDecay(5e-4, 1_000_000, warmup_steps=10_000)
    float(schedule(10_000))  # 0.99 * 5e-4
    ```
    """

    def __init__(self, learning_rate, num_train_steps, warmup_steps=0, warmup_proportion=0.0,
                 power=1.0):
        if num_train_steps <= 0:
            raise ValueError(f"num_train_steps must be positive, got {num_train_steps}")
        self.learning_rate = learning_rate
        self.num_train_steps = num_train_steps
        self.warmup_steps = warmup_steps
        self.warmup_proportion = warmup_proportion
        self.power = power
        self.warmup = max(num_train_steps * warmup_proportion, warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        total = tf.cast(self.num_train_steps, tf.float32)
        fraction = tf.minimum(step, total) / total
        lr = tf.constant(self.learning_rate, tf.float32) * tf.pow(1.0 - fraction, self.power)
        # Without a warm-up the original computes min(1, 0/0) = NaN at step 0; we skip it.
        if self.warmup > 0:
            lr *= tf.minimum(1.0, step / tf.cast(self.warmup, tf.float32))
        return lr

    def get_config(self):
        return {"learning_rate": self.learning_rate, "num_train_steps": self.num_train_steps,
                "warmup_steps": self.warmup_steps, "warmup_proportion": self.warmup_proportion,
                "power": self.power}
