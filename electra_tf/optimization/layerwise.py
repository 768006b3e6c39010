"""Layer-wise learning-rate decay for fine-tuning: lower layers learn more slowly."""


def layerwise_lr_multipliers(names, layerwise_lr_decay_power, n_transformer_layers):
    """The LR multiplier of each variable under layer-wise LR decay.

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
