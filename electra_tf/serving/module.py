"""The `tf.Module` an export saves: the text encoder, the endpoints and their signatures.

Every endpoint gets its `<name>_ids` signature (int32 `input_ids`, `input_mask`,
`segment_ids` [batch, seq]), one signature per `TextSignature` (`<name>_<suffix>`, string
inputs tokenised in the graph by the training tokenizer) and `<name>_examples`: the first
text signature on serialized tf.Examples (one input, `inputs`: string [batch]), with the
same outputs. Classifiers and regressors also get `<name>_classify` / `<name>_regress`,
shaped as TF Serving's Classify / Regress APIs require (one input `inputs`; outputs
`classes` and `scores`, or `outputs`) and marked with their method names by the export.
`serving_default` is the first text signature of the first endpoint. Raw-text batches are
padded to their longest member, at most `max_seq_length` tokens.

Every request is checked before the network reads it: an id outside its embedding table
fails the call with an `InvalidArgumentError` naming the input, the position, the value and
the valid range (Keras' lookup would wrap -1 round to V-1 silently). An empty batch gives
empty outputs (batch 0; the sequence dimension then at least 1).
"""

import inspect

import tensorflow as tf

from electra_tf.serving.examples import EXAMPLES_INPUT, parse_text_examples

# SignatureDef method names (`tensorflow/core/protobuf/meta_graph.proto`; TF Serving's
# `signature_constants`): TF2 saves every signature as predict.
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


class ServingModule(tf.Module):
    """What is saved: the text encoder, the endpoints' variables and their signatures.

    Args:
        text_encoder: a `TextEncoder` (its vocabulary becomes an asset of the export).
        endpoints: `Endpoint`s; the first one's first text signature is `serving_default`.
    Attributes:
        signatures: {signature name: concrete function}, for `tf.saved_model.save`.
        text_signatures: {text signature name: its `TextSignature`}.
        ids_signatures: {ids signature name: its endpoint's first `TextSignature`} (whose
            example gives the ids signature's warm-up request).
        example_signatures: {tf.Example signature name (`_examples`, `_classify`,
            `_regress`): the `TextSignature` whose inputs its examples hold}.
        method_names: {signature name: its SignatureDef method name} (`PREDICT_METHOD`
            unless `CLASSIFY_METHOD` or `REGRESS_METHOD`).
    """

    def __init__(self, text_encoder, endpoints):
        super().__init__(name="electra_serving")
        if not endpoints:
            raise ValueError("ServingModule needs at least one endpoint")
        self.text_encoder = text_encoder
        # Only the variables are tracked (Keras 3 variables wrap tf.Variables), not the Keras
        # models: saving those would also trace and store every layer's call, which is slow.
        unique = {id(v): v.value for e in endpoints for v in e.model.variables}
        self.model_variables = list(unique.values())
        self._signatures, self.text_signatures, self.ids_signatures = {}, {}, {}
        self.example_signatures, self._methods = {}, {}  # only the non-predict ones
        for endpoint in endpoints:
            # The model is traced once, in the ids function; the other signatures call it.
            serve_ids = _ids_function(endpoint)
            for text in endpoint.text_signatures:
                name = text_signature_name(endpoint, text)
                self._signatures[name] = _concrete(
                    self._serve_text(serve_ids, text), text.inputs,
                    [tf.TensorSpec([None], tf.string, name=n) for n in text.inputs])
                self.text_signatures[name] = text
            self._signatures[f"{endpoint.name}_ids"] = serve_ids.get_concrete_function()
            self.ids_signatures[f"{endpoint.name}_ids"] = endpoint.text_signatures[0]
            self._add_example_signatures(endpoint, serve_ids)
        default = text_signature_name(endpoints[0], endpoints[0].text_signatures[0])
        self._signatures["serving_default"] = self._signatures[default]
        self.text_signatures["serving_default"] = self.text_signatures[default]

    @property
    def method_names(self):
        """{signature name: its SignatureDef method name}."""
        return {name: self._methods.get(name, PREDICT_METHOD) for name in self._signatures}

    @property
    def signatures(self):
        """{signature name: concrete function}, for `tf.saved_model.save`."""
        return dict(self._signatures)

    def _serve_text(self, serve_ids, text):
        """Raw text → features, tokens and `serve_ids`' outputs (a Python function)."""
        def serve_text(*texts):
            features, extras = text.encode(*texts)
            # An empty batch has no positions; its per-token outputs get one (see serve_ids).
            features = {k: _at_least(v, 0, 1) for k, v in features.items()}
            outputs = {**features, "tokens": self.text_encoder.tokens(features["input_ids"]),
                       **serve_ids(**features)}
            if text.finish:
                outputs.update(text.finish(outputs, extras))
            return outputs

        return serve_text

    def _add_example_signatures(self, endpoint, serve_ids):
        """`<name>_examples`, and `<name>_classify` / `<name>_regress` when the endpoint
        has them: the first text signature on serialized tf.Examples."""
        text = endpoint.text_signatures[0]
        serve_text = self._serve_text(serve_ids, text)
        kinds = [("examples", lambda outputs: outputs, PREDICT_METHOD),
                 ("classify", endpoint.classify, CLASSIFY_METHOD),
                 ("regress", endpoint.regress, REGRESS_METHOD)]
        for suffix, select, method in kinds:
            if select is None:
                continue

            def serve_examples(inputs, select=select):
                return select(serve_text(*parse_text_examples(inputs, text.inputs)))

            name = f"{endpoint.name}_{suffix}"
            self._signatures[name] = _concrete(
                serve_examples, [EXAMPLES_INPUT],
                [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
            self.example_signatures[name] = text
            self._methods[name] = method


def text_signature_name(endpoint, text):
    """`<endpoint>_<suffix>`, or the endpoint's name alone when the suffix is None."""
    return endpoint.name if text.suffix is None else f"{endpoint.name}_{text.suffix}"


def _concrete(function, names, specs):
    """The concrete function of `function(*args)` whose inputs are called `names`."""
    # The Python parameter names become the signature's input names.
    return tf.function(_named(function, names), input_signature=specs,
                       autograph=False).get_concrete_function()


def _ids_function(endpoint):
    """The endpoint on int32 features, as a `tf.function` of the three inputs: the ids
    checked against the embedding tables first, and an empty batch answered."""
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec], autograph=False)
    def serve_ids(input_ids, input_mask, segment_ids):
        batch = tf.shape(input_ids)[0]
        # The networks read position 0 ([CLS]) of every row and gather at [MASK] positions,
        # which an empty batch does not have: it runs on one row of padding, then dropped.
        features = {k: _at_least(v, 1, 1) for k, v in (
            ("input_ids", input_ids), ("input_mask", input_mask), ("segment_ids", segment_ids))}
        checks = [_check_range("input_ids", features["input_ids"], endpoint.vocab_size,
                               "vocab_size"),
                  _check_range("segment_ids", features["segment_ids"],
                               endpoint.type_vocab_size, "type_vocab_size")]
        with tf.control_dependencies(checks):  # before any lookup can fail or wrap round
            features = {k: tf.identity(v) for k, v in features.items()}
        return {k: v[:batch] for k, v in endpoint.outputs(features).items()}

    return serve_ids


def _check_range(name, ids, size, size_name):
    """An assertion that every value of `ids` is in [0, size).

    Args:
        name: the input's name, for the message.
        ids: int32 [batch, seq], at least one row and position.
        size: the table size; `size_name` its config field.
    Returns:
        The `Assert` op; its message names the first id outside the range, e.g.
        "input_ids[1, 2] = -1 is outside [0, 1024) (vocab_size)".
    """
    outside = tf.cast(tf.where((ids < 0) | (ids >= size)), tf.int32)  # [n, 2]
    first = tf.concat([outside, tf.zeros([1, 2], tf.int32)], 0)[0]  # [0, 0] if none
    message = tf.strings.format(
        f"{name}[{{}}, {{}}] = {{}} is outside [0, {size}) ({size_name})",
        (first[0], first[1], tf.gather_nd(ids, first)))
    return tf.debugging.Assert(tf.equal(tf.shape(outside)[0], 0), [message],
                               name=f"check_{name}")


def _at_least(tensor, rows, columns):
    """A [B, S] tensor padded with zeros to at least `rows` rows and `columns` columns."""
    shape = tf.shape(tensor)
    tensor = tf.concat([tensor, tf.zeros([tf.maximum(rows - shape[0], 0), shape[1]],
                                         tensor.dtype)], 0)
    extra_columns = tf.zeros([tf.shape(tensor)[0], tf.maximum(columns - shape[1], 0)],
                             tensor.dtype)
    return tf.concat([tensor, extra_columns], 1)


def _named(function, names):
    """`function(*args)` as a function whose positional parameters are called `names`."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]

    def wrapper(*args):
        return function(*args)

    wrapper.__signature__ = inspect.Signature(params)
    return wrapper
