"""The original ELECTRA optimizer: AdamWeightDecay, its LR schedule, layer-wise LR decay.

Reproduces `model/optimization.py` of the original (spec §6): Adam without bias
correction and with ε outside the square root, decoupled weight decay scaled by the LR and
excluded by a regex on the *original* variable name, one global-norm clip at 1.0 over all
gradients, the warm-up that multiplies a polynomially decaying LR, and (for fine-tuning)
layer-wise LR decay. Also moves the optimizer state to and from the original checkpoint
format (`<var>/adam_m`, `<var>/adam_v`, `global_step`).

Which step the LR reads: the original reads `global_step` while the `+1` runs beside the
update, so an update sees t or t+1 (spec §6.1). We use t+1: the update that makes the step
count s uses lr(s), so the first update has a non-zero LR (as a TF 2.15 run of the original
did) and `optimizer.learning_rate` is the LR the next update will use.
"""

import re

import keras
import numpy as np
import tensorflow as tf

# Tested with re.search on the original variable name, as `create_optimizer` passes them.
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr·(1 − min(t, T)/T)^power · min(1, t/warmup), warmup = max(T·proportion, steps).

    The warm-up *multiplies* the decaying LR (spec §6.1): at t = warmup the LR is
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


def layerwise_lr_multipliers(names, layerwise_lr_decay_power, n_transformer_layers):
    """The LR multiplier of each variable under layer-wise LR decay (spec §6.3).

    A variable's depth comes from the first of these substrings its original name contains:
    "/embeddings/" and "/embeddings_project/" → 0, "encoder/layer_<k>/" → k+1 (the trailing
    slash keeps "layer_1/" from matching "layer_10/"), "task_specific/" → L+2. The multiplier
    is decay^(L+2−depth): the top layer gets decay², the heads 1.

    Args:
        names: original variable names, e.g. "electra/encoder/layer_0/output/dense/kernel".
        layerwise_lr_decay_power: the decay (0.8 for small/base, 0.9 for large).
        n_transformer_layers: L.
    Returns:
        dict: name -> multiplier (float).
    Raises:
        ValueError: names matching no key (the original's "No learning rate specified for
            variable"), or more than one (the original would update those once per key).
    """
    L = n_transformer_layers
    depths = {"/embeddings/": 0, "/embeddings_project/": 0, "task_specific/": L + 2}
    depths.update({f"encoder/layer_{k}/": k + 1 for k in range(L)})
    multipliers, unmatched, ambiguous = {}, [], []
    for name in names:
        keys = [key for key in depths if key in name]
        if not keys:
            unmatched.append(name)
        elif len(keys) > 1:
            ambiguous.append(f"{name} ({', '.join(keys)})")
        else:
            multipliers[name] = layerwise_lr_decay_power ** (L + 2 - depths[keys[0]])
    if unmatched:
        raise ValueError("No learning rate specified for variable(s) (layer-wise LR decay "
                         "knows embeddings, encoder/layer_<k>/ and task_specific/): "
                         + ", ".join(unmatched))
    if ambiguous:
        raise ValueError("variable(s) matching several layer-wise LR keys: "
                         + ", ".join(ambiguous))
    return multipliers


class _OriginalNames:
    """Variable key -> (original name, original shape, variable).

    A plain object rather than a dict or tuple: Keras and TF tracking would adopt the model
    variables inside those as optimizer state.
    """

    def __init__(self, by_key):
        self.by_key = by_key


@keras.saving.register_keras_serializable(package="electra_tf")
class AdamWeightDecay(keras.optimizers.Optimizer):
    """The original `AdamWeightDecayOptimizer` (spec §6.2) as a Keras optimizer.

    Per variable: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; u = m/(√v + ε); u += wd·θ unless
    the original name matches an exclusion regex; θ ← θ − lr·u. Keras' `AdamW` differs:
    it bias-corrects m and v and adds ε inside its step size, so it cannot reproduce this.

    Decay exclusion and layer-wise LR act on each variable's *original* name (our Keras
    names differ), so call `set_original_names` before the optimizer is built; building on a
    variable without one is an error.

    Clipping: `global_clipnorm` is `tf.clip_by_global_norm` over all gradients of a step at
    once, applied after the cross-replica sum, so a step under any `tf.distribute` strategy
    equals a single-device step. (Keras' own `global_clipnorm` clips each replica's part
    before the sum; the original on TPU also clipped per core, then summed.)

    Gradient accumulation (`gradient_accumulation_steps=k`): Keras sums k micro-batch
    gradients and updates on every k-th `apply` with their mean, which is then clipped. The
    step count (`iterations`, `global_step`) and the LR schedule count *updates*, not
    micro-batches, so `num_train_steps` keeps its meaning at k× the micro-batch size.

    Args:
        learning_rate: a float or a schedule such as `WarmupPolynomialDecay`. A schedule is
            evaluated at the step count the update produces (t+1; see the module doc).
        weight_decay_rate: the decoupled weight decay (the original's default is 0.0;
            pretraining and fine-tuning pass 0.01).
        beta_1, beta_2, epsilon: as the original (ε = 1e-6, outside the square root).
        exclude_from_weight_decay: regexes; a variable whose original name matches one is
            not decayed.
        layerwise_lr_decay_power: > 0 turns on layer-wise LR decay (fine-tuning).
        n_transformer_layers: L, needed with layer-wise decay.
        **kwargs: Keras optimizer arguments (`global_clipnorm`, `gradient_accumulation_steps`,
            `name`, ...). Keras' own `weight_decay` is refused: it would decay twice.

    Example:
    ```python
    optimizer = AdamWeightDecay(WarmupPolynomialDecay(5e-4, 1000, warmup_steps=100),
                                weight_decay_rate=0.01, global_clipnorm=1.0)
    optimizer.set_original_names(checkpoints.variable_map(models))
    optimizer.apply(grads, variables)
    ```
    """

    def __init__(self, learning_rate=0.001, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-6, exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
                 layerwise_lr_decay_power=-1.0, n_transformer_layers=None, **kwargs):
        if kwargs.get("weight_decay") is not None:
            raise ValueError("AdamWeightDecay applies `weight_decay_rate` itself; Keras' "
                             "`weight_decay` would decay a second time")
        if layerwise_lr_decay_power > 0 and n_transformer_layers is None:
            raise ValueError("layer-wise LR decay needs n_transformer_layers")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclusions = tuple(exclude_from_weight_decay or ())
        self.layerwise_lr_decay_power = layerwise_lr_decay_power
        self.n_transformer_layers = n_transformer_layers
        self._original = _OriginalNames({})

    def set_original_names(self, variables):
        """Tells the optimizer each variable's original name and shape.

        Args:
            variables: {original name: `checkpoints.Mapped` or a variable}, e.g.
                `checkpoints.variable_map(models)` plus any fine-tuning heads.
        """
        if self.built:
            raise ValueError("set_original_names must be called before the optimizer is built")
        original = {}
        for name, v in variables.items():
            variable = getattr(v, "variable", v)
            shape = tuple(getattr(v, "original_shape", variable.shape))
            original[self._var_key(variable)] = (name, shape, variable)
        self._original = _OriginalNames(original)

    def original_name(self, variable):
        """The original name of `variable`, or None."""
        entry = self._original.by_key.get(self._var_key(variable))
        return entry[0] if entry else None

    def build(self, var_list):
        if self.built:
            return
        names = [self.original_name(v) for v in var_list]
        unnamed = [getattr(v, "path", v.name) for v, n in zip(var_list, names) if n is None]
        if unnamed:
            raise ValueError("no original name for variable(s) " + ", ".join(unnamed) +
                             "; pass them to set_original_names() before the first update "
                             "(weight-decay exclusion and layer-wise LR read that name)")
        super().build(var_list)
        # Static per-variable settings, read at trace time by `update_step`.
        self._decayed = tuple(bool(self.weight_decay_rate) and
                              not any(re.search(r, n) for r in self.exclusions)
                              for n in names)
        if self.layerwise_lr_decay_power > 0:
            by_name = layerwise_lr_multipliers(names, self.layerwise_lr_decay_power,
                                               self.n_transformer_layers)
            self._lr_multipliers = tuple(by_name[n] for n in names)
        else:
            self._lr_multipliers = (1.0,) * len(names)
        self._adam_m, self._adam_v = self.add_optimizer_variables(var_list,
                                                                   ["adam_m", "adam_v"])

    def is_decayed(self, variable):
        """Whether weight decay applies to `variable` (the optimizer must be built)."""
        return self._decayed[self._get_variable_index(variable)]

    def lr_multiplier(self, variable):
        """The layer-wise LR multiplier of `variable` (1.0 without layer-wise decay)."""
        return self._lr_multipliers[self._get_variable_index(variable)]

    def _get_current_learning_rate(self):
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            # `iterations` counts updates (also with gradient accumulation); the update
            # being made brings it to t+1.
            return self._learning_rate(self.iterations + 1)
        return super()._get_current_learning_rate()

    def _clip_gradients(self, grads):
        if self.global_clipnorm:
            return grads  # clipped after the cross-replica sum, in _backend_update_step
        return super()._clip_gradients(grads)

    def _backend_apply_gradients(self, grads, trainable_variables):
        replica = tf.distribute.get_replica_context()
        if (not self.gradient_accumulation_steps or not tf.distribute.has_strategy()
                or replica is None or self.use_ema
                or tf.__internal__.distribute.strategy_supports_no_merge_call()):
            return super()._backend_apply_gradients(grads, trainable_variables)
        # Keras chooses "update or accumulate" with a cond in the replica context, and the
        # update's all-reduce (a merge_call) cannot run inside it under MirroredStrategy
        # (stock Keras optimizers fail there too). Choose in the cross-replica context
        # instead, as `LossScaleOptimizer` does.
        steps = self.gradient_accumulation_steps

        def update(grads, variables):
            accumulated = [self._accumulated_gradients[self._get_variable_index(v)]
                           for v in variables]
            grads = [(g + a) / steps for g, a in zip(grads, accumulated)]
            self._backend_update_step(self._clip_gradients(grads), variables,
                                      self.learning_rate)
            self._backend_reset_gradient_accumulators()

        def accumulate(grads, variables):
            self._backend_increment_gradient_accumulators(
                grads, [self._accumulated_gradients[self._get_variable_index(v)]
                        for v in variables])

        def cross_replica(distribution, grads, variables):
            tf.cond((self._iterations + 1) % steps == 0,
                    lambda: distribution.extended.call_for_each_replica(
                        update, args=(grads, variables)),
                    lambda: distribution.extended.call_for_each_replica(
                        accumulate, args=(grads, variables)))

        replica.merge_call(cross_replica, args=(grads, trainable_variables))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self.global_clipnorm:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        # The TF backend's own step (all-reduce, then update in a merge call), with the
        # global-norm clip between the two: one norm over every gradient of the step.
        trainable_variables = [v.value if isinstance(v, keras.Variable) else v
                               for v in trainable_variables]
        grads_and_vars = self._all_reduce_sum_gradients(zip(grads, trainable_variables))
        grads, variables = zip(*grads_and_vars)
        # Densify first (duplicate rows summed): the norm of an IndexedSlices counts each
        # looked-up row separately, and the original's gradients were dense (one-hot
        # embeddings on TPU; in pretraining the tied output layer densifies them anyway).
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        grads, _ = tf.clip_by_global_norm(grads, self.global_clipnorm)
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step, self._distribution_strategy,
            list(zip(grads, variables)), learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        """The original `_apply_gradients` body, in its op order (spec §6.2)."""
        i = self._get_variable_index(variable)
        lr = tf.cast(learning_rate, variable.dtype)
        if self._lr_multipliers[i] != 1.0:
            lr *= self._lr_multipliers[i]
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)  # the original's math densifies too
        grad = tf.cast(gradient, variable.dtype)
        m, v = self._adam_m[i], self._adam_v[i]
        next_m = self.beta_1 * m.value + (1.0 - self.beta_1) * grad
        next_v = self.beta_2 * v.value + (1.0 - self.beta_2) * tf.square(grad)
        # No bias correction, and ε outside the square root.
        update = next_m / (tf.sqrt(next_v) + self.epsilon)
        if self._decayed[i]:
            update += self.weight_decay_rate * tf.convert_to_tensor(variable)
        self.assign_sub(variable, lr * update)
        self.assign(m, next_m)
        self.assign(v, next_v)

    def get_config(self):
        config = super().get_config()
        config.update(weight_decay_rate=self.weight_decay_rate, beta_1=self.beta_1,
                      beta_2=self.beta_2, epsilon=self.epsilon,
                      exclude_from_weight_decay=list(self.exclusions),
                      layerwise_lr_decay_power=self.layerwise_lr_decay_power,
                      n_transformer_layers=self.n_transformer_layers)
        return config


def create_optimizer(learning_rate, num_train_steps, weight_decay_rate=0.01, warmup_steps=0,
                     warmup_proportion=0.0, lr_decay_power=1.0, layerwise_lr_decay_power=-1.0,
                     n_transformer_layers=None, variables=None, global_clipnorm=1.0,
                     gradient_accumulation_steps=None):
    """The original `optimization.create_optimizer`: schedule, AdamWeightDecay, clip at 1.0.

    Args:
        learning_rate, num_train_steps, weight_decay_rate, warmup_steps, warmup_proportion,
        lr_decay_power, layerwise_lr_decay_power, n_transformer_layers: as the original.
        variables: {original name: `Mapped` or variable}, given to `set_original_names`.
        global_clipnorm: the global-norm clip (the original's is 1.0).
        gradient_accumulation_steps: None, or k ≥ 2 micro-batches per update.
    Returns:
        An `AdamWeightDecay`.
    """
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, warmup_steps,
                                     warmup_proportion, lr_decay_power)
    optimizer = AdamWeightDecay(schedule, weight_decay_rate=weight_decay_rate,
                                layerwise_lr_decay_power=layerwise_lr_decay_power,
                                n_transformer_layers=n_transformer_layers,
                                global_clipnorm=global_clipnorm,
                                gradient_accumulation_steps=gradient_accumulation_steps)
    if variables is not None:
        optimizer.set_original_names(variables)
    return optimizer


def pretraining_optimizer(config, variables, gradient_accumulation_steps=None):
    """The optimizer `run_pretraining` builds from a `PretrainingConfig` (no layer-wise LR).

    Args:
        config: a `PretrainingConfig`.
        variables: {original name: `Mapped`}, i.e. `checkpoints.variable_map(models)`.
        gradient_accumulation_steps: None, or k ≥ 2.
    """
    return create_optimizer(config.learning_rate, config.num_train_steps,
                            weight_decay_rate=config.weight_decay_rate,
                            warmup_steps=config.num_warmup_steps,
                            lr_decay_power=config.lr_decay_power, variables=variables,
                            gradient_accumulation_steps=gradient_accumulation_steps)


def _inner(optimizer):
    """The `AdamWeightDecay` inside a `LossScaleOptimizer`, or the optimizer itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def load_original_state(optimizer, optimizer_slots, global_step):
    """Loads the original's Adam slots and step (`OriginalCheckpoint`) into the optimizer.

    Builds the optimizer, if it is not built yet, on every variable given to
    `set_original_names`. Sets the step so the schedule continues where the original was.

    Args:
        optimizer: an `AdamWeightDecay` (or a `LossScaleOptimizer` around one) whose
            original names are set.
        optimizer_slots: {original name: {"adam_m": array, "adam_v": array}}.
        global_step: int, or None to leave the step alone.
    Raises:
        ValueError: slots for an unknown variable, a tracked variable without slots, or a
            shape mismatch; the message names each.
    """
    inner = _inner(optimizer)
    entries = list(inner._original.by_key.values())
    if not optimizer.built:
        optimizer.build([variable for _, _, variable in entries])
    tracked = {name: (shape, variable) for name, shape, variable in entries
               if inner._var_key(variable) in inner._trainable_variables_indices}
    problems = [f"slots for a variable the optimizer does not track: {n}"
                for n in sorted(set(optimizer_slots) - set(tracked))]
    problems += [f"no slots for {n}" for n in sorted(set(tracked) - set(optimizer_slots))]
    for name in sorted(set(tracked) & set(optimizer_slots)):
        shape = tracked[name][0]
        for slot in ("adam_m", "adam_v"):
            value = optimizer_slots[name].get(slot)
            if value is None:
                problems.append(f"no {slot} for {name}")
            elif tuple(np.shape(value)) != shape:
                problems.append(f"{name}/{slot} has shape {list(np.shape(value))}, the "
                                f"variable's original shape is {list(shape)}")
    if problems:
        raise ValueError("optimizer state does not match the model:\n  "
                         + "\n  ".join(problems))
    for name, (shape, variable) in tracked.items():
        i = inner._get_variable_index(variable)
        for slot, slot_vars in (("adam_m", inner._adam_m), ("adam_v", inner._adam_v)):
            slot_vars[i].assign(np.reshape(optimizer_slots[name][slot], variable.shape))
    if global_step is not None:
        # `iterations` counts updates; Keras' counter counts micro-batches.
        inner._iterations.assign(int(global_step) * (inner.gradient_accumulation_steps or 1))


def export_original_state(optimizer):
    """The optimizer's step and Adam slots in the original's format.

    Only variables the optimizer was built with have slots, as in the original, where a
    variable whose gradient is None gets none: build the optimizer on the variables that
    receive gradients. Export at an update boundary when accumulating gradients (the
    partial sums are not part of the original format).

    Returns:
        (global_step, optimizer_slots) for `checkpoints.save_original(models, prefix,
        global_step, optimizer_slots)`.
    """
    inner = _inner(optimizer)
    slots = {}
    for name, shape, variable in inner._original.by_key.values():
        i = inner._trainable_variables_indices.get(inner._var_key(variable))
        if i is not None:
            slots[name] = {slot: np.reshape(keras.ops.convert_to_numpy(slot_vars[i]), shape)
                           for slot, slot_vars in (("adam_m", inner._adam_m),
                                                   ("adam_v", inner._adam_v))}
    return int(keras.ops.convert_to_numpy(inner.iterations)), slots
