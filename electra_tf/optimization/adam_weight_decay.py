"""The original `AdamWeightDecayOptimizer`, its global-norm clip, and its checkpoint state.

Per variable: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; u = m/(√v + ε); u += wd·θ unless
the variable's *original* name matches an exclusion regex; θ ← θ − lr·u. No bias
correction, ε outside the square root: Keras' `AdamW` computes something else.

Why not a `keras.optimizers.Optimizer` subclass: the original clips once, by the global
norm of *all* gradients of the whole batch, so the clip must sit between the cross-replica
sum and the update. Keras clips each replica's part before the sum, and its update path
between the two is private API. This optimizer is a `tf.Module` on public `tf.distribute`
calls: gradients are summed with `ReplicaContext.all_reduce`, clipped in each replica (all
hold the same sum), and applied with `merge_call` + `StrategyExtended.update`, so a step under
any strategy equals a single-device step. It also does what Keras' wrappers would have
done: gradient accumulation and dynamic loss scaling (mixed_float16).

The global norm counts a word-embedding table that is only looked up as the original does on
the platform chosen (`clip_norm_of_sparse_gradients`): "per_lookup", the squares of the
unsummed rows of its `IndexedSlices` gradient (the original's `tf.gather` lookups off TPU);
"dense", the squares of the summed gradient (its one-hot matmul lookups on TPU). The gradient
applied is the summed one either way.
"""

import functools
import re

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import CLIP_NORMS_OF_SPARSE_GRADIENTS
from electra_tf.optimization.layerwise import layerwise_lr_multipliers

# Tested with re.search on the original variable name, as `create_optimizer` passes them.
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
# Dynamic loss scaling as Keras' LossScaleOptimizer: start at 2^15, halve on a non-finite
# gradient (the update is skipped), double after 2000 finite steps.
INITIAL_LOSS_SCALE = 2.0 ** 15
LOSS_SCALE_GROWTH_STEPS = 2000
# The tables the original looks up with `tf.gather` off TPU (re.search on the original
# name). Its token types are one-hot matmuls and its positions a slice, so their gradients
# are dense there, whatever our layers make of them.
GATHERED_IN_ORIGINAL = r"/word_embeddings$"


class _Untracked:
    """Holds model variables without making them part of the optimizer's checkpoint."""

    def __init__(self, value):
        self.value = value


def _tf_variable(variable):
    """The `tf.Variable` (possibly distributed) behind a Keras variable."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class AdamWeightDecay(tf.Module):
    """The original optimizer: Adam without bias correction, decoupled weight decay.

    Decay exclusion and layer-wise LR act on each variable's original name (our Keras
    names differ): call `set_original_names` before the first update.

    Args:
        learning_rate: a float or a schedule such as `WarmupPolynomialDecay`, evaluated at
            the step count the update produces: the update that makes the step count t
            uses lr(t), so the first update has a non-zero LR.
        weight_decay_rate: the decoupled weight decay (pretraining and fine-tuning: 0.01).
        beta_1, beta_2, epsilon: as the original (ε = 1e-6, outside the square root).
        exclude_from_weight_decay: regexes; a variable whose original name matches one is
            not decayed.
        layerwise_lr_decay_power: > 0 turns on layer-wise LR decay (fine-tuning).
        n_transformer_layers: L, needed with layer-wise decay.
        clip_norm: the global-norm clip (the original: 1.0), or None.
        gradient_accumulation_steps: k ≥ 1 micro-batches per update; the update uses their
            mean gradient. The step count and the schedule count updates.
        clip_norm_of_sparse_gradients: "per_lookup" (the original off TPU) or "dense" (on
            TPU): how the global norm counts an `IndexedSlices` gradient of a table the
            original looks up with a gather (`GATHERED_IN_ORIGINAL`). Other `IndexedSlices`
            are summed first (dense in the original).
        dynamic_loss_scale: scale the loss (mixed_float16); see `scale_loss`.
        initial_loss_scale: the first loss scale.
        name: the module name.

    Example:
    ```python
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer = AdamWeightDecay(WarmupPolynomialDecay(1e-3, 100, warmup_steps=10),
                                weight_decay_rate=0.01, clip_norm=1.0)
    optimizer.set_original_names({"layer/kernel": variable})
    optimizer.apply([tf.ones(3)], [variable])
    optimizer.original_state()[0]  # the step: 1
    ```
    """

    def __init__(self, learning_rate=0.001, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-6, exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
                 layerwise_lr_decay_power=-1.0, n_transformer_layers=None, clip_norm=None,
                 gradient_accumulation_steps=1, clip_norm_of_sparse_gradients="per_lookup",
                 dynamic_loss_scale=False, initial_loss_scale=INITIAL_LOSS_SCALE,
                 name="adam_weight_decay"):
        super().__init__(name=name)
        if layerwise_lr_decay_power > 0 and n_transformer_layers is None:
            raise ValueError("layer-wise LR decay needs n_transformer_layers")
        if gradient_accumulation_steps < 1:
            raise ValueError(f"gradient_accumulation_steps must be ≥ 1, got "
                             f"{gradient_accumulation_steps}")
        self.schedule = learning_rate
        self.weight_decay_rate = weight_decay_rate
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.exclusions = tuple(exclude_from_weight_decay or ())
        self.layerwise_lr_decay_power = layerwise_lr_decay_power
        self.n_transformer_layers = n_transformer_layers
        if clip_norm_of_sparse_gradients not in CLIP_NORMS_OF_SPARSE_GRADIENTS:
            raise ValueError(f"clip_norm_of_sparse_gradients must be one of "
                             f"{', '.join(CLIP_NORMS_OF_SPARSE_GRADIENTS)}, got "
                             f"{clip_norm_of_sparse_gradients!r}")
        self.clip_norm = clip_norm
        self.clip_norm_of_sparse_gradients = clip_norm_of_sparse_gradients
        self.accumulation_steps = gradient_accumulation_steps
        self.dynamic_loss_scale = dynamic_loss_scale
        # Updates made (the original's `global_step`), and micro-batches seen.
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.micro_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="micro_steps")
        if dynamic_loss_scale:
            self.loss_scale = tf.Variable(float(initial_loss_scale), trainable=False,
                                          name="loss_scale")
            self.finite_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                            name="finite_steps")
        # id(tf variable) -> (original name, original shape, variable)
        self._names = _Untracked({})
        self._built = _Untracked(None)  # [(tf variable, original name, original shape)]
        self._global_norm = _Untracked(None)  # the last update's norm (not checkpointed)

    # ------------------------------------------------------------------ names and state
    def set_original_names(self, variables):
        """Tells the optimizer each variable's original name and shape.

        Args:
            variables: {original name: `checkpoints.Mapped` or a variable}, e.g.
                `checkpoints.variable_map(models)` plus any fine-tuning heads.
        """
        if self.built:
            raise ValueError("set_original_names must be called before the optimizer is built")
        self._names.value = {}
        for name, v in variables.items():
            variable = getattr(v, "variable", v)
            shape = tuple(getattr(v, "original_shape", variable.shape))
            self._names.value[id(_tf_variable(variable))] = (name, shape, variable)

    def original_name(self, variable):
        """The original name of `variable`, or None."""
        entry = self._names.value.get(id(_tf_variable(variable)))
        return entry[0] if entry else None

    @property
    def built(self):
        return self._built.value is not None

    def build(self, variables):
        """Creates the Adam slots of `variables` (those that receive gradients).

        Call it inside the strategy's scope, so the slots are mirrored like the model.
        """
        if self.built:
            return
        names = [self.original_name(v) for v in variables]
        unnamed = [getattr(v, "path", v.name) for v, n in zip(variables, names) if n is None]
        if unnamed:
            raise ValueError("no original name for variable(s) " + ", ".join(unnamed) +
                             "; pass them to set_original_names() before the first update "
                             "(weight-decay exclusion and layer-wise LR read that name)")
        # Static per-variable settings (tuples: not tracked), read when tracing an update.
        self._decayed = tuple(bool(self.weight_decay_rate) and
                              not any(re.search(r, n) for r in self.exclusions) for n in names)
        if self.layerwise_lr_decay_power > 0:
            by_name = layerwise_lr_multipliers(names, self.layerwise_lr_decay_power,
                                               self.n_transformer_layers)
            self._lr_multipliers = tuple(by_name[n] for n in names)
        else:
            self._lr_multipliers = (1.0,) * len(names)
        per_lookup = self.clip_norm_of_sparse_gradients == "per_lookup"
        self._per_lookup = tuple(per_lookup and re.search(GATHERED_IN_ORIGINAL, n) is not None
                                 for n in names)

        def slots(kind):
            # Keyed by the original name, so a checkpoint's slots follow their variables
            # whatever order the variables come in.
            return {n: tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                   name=f"{kind}_{i}")
                    for i, (v, n) in enumerate(zip(variables, names))}

        self.adam_m, self.adam_v = slots("adam_m"), slots("adam_v")
        if self.accumulation_steps > 1:
            self.accumulators = slots("accumulator")
            # Per table counted per lookup: the sum of its rows' squares over the micro-batches.
            self.lookup_square_sums = {
                n: tf.Variable(0.0, trainable=False, name=f"lookup_square_sum_{i}")
                for i, n in enumerate(names) if self._per_lookup[i]}
        self._global_norm.value = tf.Variable(0.0, trainable=False, name="global_norm")
        self._built.value = [(_tf_variable(v), n, self._names.value[id(_tf_variable(v))][1])
                             for v, n in zip(variables, names)]
        self._index = _Untracked({id(v): i for i, (v, _, _) in enumerate(self._built.value)})
        self._slot_names = tuple(names)

    def index(self, variable):
        """The position of `variable` among the variables the optimizer was built with."""
        i = self._index.value.get(id(_tf_variable(variable))) if self.built else None
        if i is None:
            raise ValueError(f"variable {getattr(variable, 'path', variable.name)} was not "
                             "given to build(); the optimizer has no slots for it")
        return i

    def is_decayed(self, variable):
        """Whether weight decay applies to `variable` (the optimizer must be built)."""
        return self._decayed[self.index(variable)]

    def lr_multiplier(self, variable):
        """The layer-wise LR multiplier of `variable` (1.0 without layer-wise decay)."""
        return self._lr_multipliers[self.index(variable)]

    @property
    def learning_rate(self):
        """The LR the next update will use."""
        if callable(self.schedule):
            return self.schedule(self.iterations + 1)
        return tf.constant(self.schedule, tf.float32)

    def load_original_state(self, optimizer_slots, global_step):
        """Loads the original's Adam slots and step (e.g. `OriginalCheckpoint`'s).

        Builds the optimizer, if it is not built yet, on every variable given to
        `set_original_names`, and sets the step so the schedule continues where it was.

        Args:
            optimizer_slots: {original name: {"adam_m": array, "adam_v": array}}.
            global_step: int, or None to leave the step alone.
        Raises:
            ValueError: slots for an unknown variable, a built variable without slots, or a
                shape mismatch; the message names each.
        """
        if not self.built:
            self.build([variable for _, _, variable in self._names.value.values()])
        tracked = {name: shape for _, name, shape in self._built.value}
        problems = [f"slots for a variable the optimizer does not track: {n}"
                    for n in sorted(set(optimizer_slots) - set(tracked))]
        problems += [f"no slots for {n}" for n in sorted(set(tracked) - set(optimizer_slots))]
        for name in sorted(set(tracked) & set(optimizer_slots)):
            shape = tracked[name]
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
        for name in tracked:
            for slot, slot_vars in (("adam_m", self.adam_m), ("adam_v", self.adam_v)):
                slot_vars[name].assign(np.reshape(optimizer_slots[name][slot],
                                                  slot_vars[name].shape))
        if global_step is not None:
            self.iterations.assign(int(global_step))
            self.micro_steps.assign(int(global_step) * self.accumulation_steps)

    @property
    def global_norm(self):
        """The global norm the last update's clip used, a `tf.Variable` (0.0 before the first
        update or without a clip; the optimizer must be built); the clip factor was
        clip_norm / max(global_norm, clip_norm)."""
        return self._global_norm.value

    def slot_variables(self):
        """{"<original name>/<slot>": variable} of every slot (Adam moments, and the
        accumulators when accumulating gradients)."""
        kinds = {"adam_m": self.adam_m, "adam_v": self.adam_v}
        if self.accumulation_steps > 1:
            kinds["accumulators"] = self.accumulators
            kinds["lookup_square_sums"] = self.lookup_square_sums
        return {f"{name}/{kind}": slot for kind, slots in kinds.items()
                for name, slot in slots.items()}

    def original_state(self):
        """The step and the Adam slots in the original's format.

        Only variables the optimizer was built with have slots, as in the original, where a
        variable whose gradient is None gets none. Call it at an update boundary when
        accumulating (partial sums are not part of the original format).

        Returns:
            (global_step, optimizer_slots) for `checkpoints.save_original(models, prefix,
            global_step, optimizer_slots)`.
        """
        slots = {}
        for _, name, shape in self._built.value or []:
            slots[name] = {slot: np.reshape(slot_vars[name].numpy(), shape)
                           for slot, slot_vars in (("adam_m", self.adam_m),
                                                   ("adam_v", self.adam_v))}
        return int(self.iterations.numpy()), slots

    # ------------------------------------------------------------------ the update
    def scale_loss(self, loss):
        """The loss to differentiate: × the loss scale with dynamic loss scaling."""
        if not self.dynamic_loss_scale:
            return loss
        return loss * tf.cast(self.loss_scale, loss.dtype)

    def apply(self, grads, variables):
        """One update from this replica's gradients (call it in a replica context).

        Under a strategy, the replicas' gradients are summed, then clipped by their global
        norm, then applied, so every replica makes the same update. A None gradient leaves
        its variable alone.
        """
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if not self.built:
            if tf.distribute.has_strategy():  # slots made here would not be mirrored
                raise ValueError("build() the optimizer inside the strategy's scope before "
                                 "its first apply()")
            self.build([v for _, v in pairs])
        indices = [self.index(v) for _, v in pairs]
        grads = [g for g, _ in pairs]
        context = tf.distribute.get_replica_context()
        if context is None:
            raise ValueError("apply() runs in a replica context: inside strategy.run(), or "
                             "outside any strategy")
        if context.num_replicas_in_sync > 1:
            # IndexedSlices stay sparse: the replicas' rows are concatenated, so the
            # per-lookup norm is that of the global batch on one device.
            grads = context.all_reduce("sum", grads)
        finite = True
        if self.dynamic_loss_scale:
            grads = [_map_values(lambda x: x / tf.cast(self.loss_scale, x.dtype), g)
                     for g in grads]
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(_values(g)))
                                    for g in grads])
        # What the norm counts: per-lookup rows of a gathered table, else the summed gradient.
        per_lookup = [isinstance(g, tf.IndexedSlices) and self._per_lookup[i]
                      for g, i in zip(grads, indices)]
        grads = [g if sparse else _dense(g) for g, sparse in zip(grads, per_lookup)]
        apply_now = True
        step_grads, norm_terms, lookup_squares = grads, grads, [None] * len(grads)
        if self.accumulation_steps > 1:
            # As the original would clip the mean gradient of the accumulated batch: its
            # lookups are the micro-batches' lookups, each row divided by k.
            k = self.accumulation_steps
            apply_now = tf.equal((self.micro_steps + 1) % k, 0)
            step_grads = [(_dense(g) + self.accumulators[self._slot_names[i]]) / k
                          for g, i in zip(grads, indices)]
            lookup_squares = [tf.reduce_sum(tf.square(g.values)) if sparse else None
                              for g, sparse in zip(grads, per_lookup)]
            norm_terms = [tf.sqrt(s + self.lookup_square_sums[self._slot_names[i]]) / k
                          if sparse else g
                          for g, s, i, sparse in zip(step_grads, lookup_squares, indices,
                                                     per_lookup)]
        global_norm = None
        if self.clip_norm:
            global_norm = tf.linalg.global_norm(norm_terms)
            step_grads, _ = tf.clip_by_global_norm(step_grads, self.clip_norm,
                                                   use_norm=global_norm)
        context.merge_call(functools.partial(self._update, indices=indices),
                           args=(grads, _dense(step_grads), lookup_squares, global_norm,
                                 apply_now, finite, _and(apply_now, finite)))

    def _update(self, strategy, grads, step_grads, lookup_squares, global_norm, apply_now,
                finite, do_update, indices):
        """Cross-replica: updates every variable and the counters on each device."""
        extended = strategy.extended
        accumulating = self.accumulation_steps > 1
        lr = self.learning_rate
        for grad, step_grad, squares, i in zip(grads, step_grads, lookup_squares, indices):
            variable, name, _ = self._built.value[i]
            update = functools.partial(self._update_variable, i=i, lr=lr)
            extended.update(variable, update, args=(step_grad, self.adam_m[name],
                                                    self.adam_v[name], do_update))
            if accumulating:
                extended.update(self.accumulators[name], _accumulate,
                                args=(grad, apply_now, finite))
                if squares is not None:
                    extended.update(self.lookup_square_sums[name], _accumulate,
                                    args=(squares, apply_now, finite))
        if global_norm is not None:
            extended.update(self._global_norm.value, _assign_where,
                            args=(global_norm, do_update))
        extended.update(self.iterations, _count, args=(do_update,))
        if accumulating:
            extended.update(self.micro_steps, _count, args=(finite,))
        if self.dynamic_loss_scale:
            extended.update(self.loss_scale, _next_loss_scale,
                            args=(self.finite_steps, finite))

    def _update_variable(self, variable, grad, m, v, do_update, i, lr):
        """The original `_apply_gradients` body for one variable (`_adam_step`)."""
        lr = tf.cast(lr, variable.dtype)
        if self._lr_multipliers[i] != 1.0:
            lr *= self._lr_multipliers[i]
        grad = tf.cast(tf.convert_to_tensor(grad), variable.dtype)
        hyper = (self.beta_1, self.beta_2, self.epsilon,
                 self.weight_decay_rate if self._decayed[i] else 0.0)
        if isinstance(variable, tf.distribute.DistributedValues):
            # A TPU replica context hands over the distributed variable, which only the
            # strategy assigns (and the whole step is one XLA computation there anyway).
            new = _adam_step(*map(tf.convert_to_tensor, (variable, grad, m, v)), lr, *hyper)
            return tf.group([slot.assign(_where(do_update, value, slot))
                             for slot, value in zip((variable, m, v), new)])
        # Mirrored-style strategies hand over one device's copy of the variable, and the
        # slots whole: their copies on that device are the ones to update.
        m, v = ([c for c in slot.values if c.device == variable.device][0]
                if isinstance(slot, tf.distribute.DistributedValues) else slot
                for slot in (m, v))
        return _adam_step_in_place(variable.handle, grad, m.handle, v.handle, lr, do_update,
                                   hyper)


# One XLA kernel per variable instead of ~12 TensorFlow ops, each a pass over the
# variable: on CPU the update of ELECTRA-Small's 17M parameters cost ~8% of a step op by
# op. It assigns in place (XLA reuses the variables' buffers): returning the new values to
# assign them took 0.2 GB more peak memory in float32 ELECTRA-Small pretraining
# (docs/benchmarks.md). It takes resource handles, not variables: with variables as its
# arguments, a trace made for one optimizer's variables was reused for another's after the
# first were deleted, and failed.
@tf.function(jit_compile=True)
def _adam_step_in_place(variable, grad, m, v, lr, do_update, hyper):
    """`_adam_step` on the variables (of `grad`'s dtype) whose handles are `variable`,
    `m` and `v`, assigned unless `do_update` (True or a bool scalar) is False."""
    old = [tf.raw_ops.ReadVariableOp(resource=x, dtype=grad.dtype) for x in (variable, m, v)]
    for target, value, previous in zip((variable, m, v), _adam_step(
            old[0], grad, old[1], old[2], lr, *hyper), old):
        tf.raw_ops.AssignVariableOp(resource=target, value=_where(do_update, value, previous))


def _adam_step(variable, grad, m, v, lr, beta_1, beta_2, epsilon, weight_decay_rate):
    """The original's AdamWeightDecay arithmetic, in its op order (no bias correction).

    Returns:
        (new variable, next m, next v).
    """
    next_m = beta_1 * m + (1.0 - beta_1) * grad
    next_v = beta_2 * v + (1.0 - beta_2) * tf.square(grad)
    update = next_m / (tf.sqrt(next_v) + epsilon)
    if weight_decay_rate:
        update += weight_decay_rate * variable
    return variable - lr * update, next_m, next_v


def _dense(grads):
    """A gradient, or a list of them, as dense tensors (an `IndexedSlices` is summed into
    its table's shape)."""
    if isinstance(grads, (list, tuple)):
        return [_dense(g) for g in grads]
    return tf.convert_to_tensor(grads) if isinstance(grads, tf.IndexedSlices) else grads


def _values(grad):
    """The numbers of a gradient: an `IndexedSlices`' rows, or the tensor."""
    return grad.values if isinstance(grad, tf.IndexedSlices) else grad


def _map_values(fn, grad):
    """`fn` applied to a gradient's numbers, keeping an `IndexedSlices` sparse."""
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(fn(grad.values), grad.indices, grad.dense_shape)
    return fn(grad)


def _and(a, b):
    if a is True:
        return b
    if b is True:
        return a
    return tf.logical_and(a, b)


def _where(condition, new, old):
    """`new`, or `old` where the update is skipped (static True: just `new`)."""
    return new if condition is True else tf.where(condition, new, old)


def _assign_where(variable, value, condition):
    return variable.assign(_where(condition, value, variable))


def _count(counter, condition):
    return counter.assign_add(tf.cast(condition, counter.dtype))


def _accumulate(accumulator, grad, apply_now, finite):
    """Adds a micro-batch gradient; empties the sum when the update uses it."""
    summed = _where(finite, accumulator + tf.convert_to_tensor(grad), accumulator)
    return accumulator.assign(tf.where(_and(apply_now, finite), tf.zeros_like(summed), summed))


def _next_loss_scale(scale, finite_steps, finite):
    """Halves the scale after a non-finite gradient; doubles it after enough finite ones."""
    steps = tf.where(finite, finite_steps + 1, 0)
    grow = steps >= LOSS_SCALE_GROWTH_STEPS
    new_scale = tf.where(finite, tf.where(grow, scale * 2.0, scale), scale / 2.0)
    return tf.group(finite_steps.assign(tf.where(grow, tf.zeros_like(steps), steps)),
                    scale.assign(new_scale))
