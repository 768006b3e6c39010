"""Requests as serialized `tf.train.Example`s: what the `_examples`, `_classify` and
`_regress` signatures read.

TF Serving's Classify and Regress APIs hand a signature its examples as one string tensor
named `inputs` (`tensorflow_serving/servables/tensorflow/classifier.cc`), and Model Garden's
`serve_examples` does the same for Predict; so every tf.Example signature here takes
`inputs`, string [batch]. Each example holds the text signature's inputs as features of the
same names (`text`; `text_a`, `text_b`; `question`, `context`), each a `bytes_list` with
exactly one UTF-8 value.
"""

import tensorflow as tf

# The input name of every tf.Example signature (TF Serving's `kClassifyInputs` and
# `kRegressInputs` are "inputs" too).
EXAMPLES_INPUT = "inputs"


def text_example(**texts):
    """A `tf.train.Example` with one `bytes_list` feature per text, e.g.
    `text_example(text_a="A man sleeps.", text_b="A person rests.")`."""
    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))
        for name, value in texts.items()}))


def parse_text_examples(serialized, names):
    """The text features of serialized examples, each checked to hold exactly one string.

    Args:
        serialized: string [batch], serialized `tf.train.Example`s.
        names: the feature names, each a `bytes_list` of one value.
    Returns:
        One string tensor [batch] per name, in `names` order.
    Raises (when the graph runs), `InvalidArgumentError`:
        a missing feature or one with several values: "inputs[1]: feature text_b has 0
            values, expected 1 (a bytes_list with one UTF-8 string)"; a feature of another
            type: "Key: text_a, Index: 0.  Data types don't match. Expected type: string,
            Actual type: int64" (from the parser; Index is the example); bytes that are not
            an Example: "Could not parse example input, value: '...'".
    """
    # Ragged, not FixedLenFeature: the parser's own message for a missing feature or a
    # second value names neither the example nor, for the latter, the problem.
    features = tf.io.parse_example(serialized, {name: tf.io.RaggedFeature(tf.string)
                                                for name in names})
    texts, checks = [], []
    for name in names:
        counts = features[name].row_lengths()
        wrong = tf.cast(tf.where(tf.not_equal(counts, 1)), tf.int32)[:, 0]
        first = tf.concat([wrong, [0]], 0)[0]  # 0 if none
        message = tf.strings.format(
            f"{EXAMPLES_INPUT}[{{}}]: feature {name} has {{}} values, expected 1 (a "
            "bytes_list with one UTF-8 string)",
            (first, tf.gather(tf.concat([counts, [1]], 0), first)))
        checks.append(tf.debugging.Assert(tf.equal(tf.size(wrong), 0), [message],
                                          name=f"check_{name}"))
        texts.append(features[name])
    with tf.control_dependencies(checks):
        return [tf.identity(text.flat_values) for text in texts]


def serialized_examples(request_input):
    """What TF Serving's Classify and Regress feed as `inputs`
    (`servables/tensorflow/util.cc`, InputToSerializedExampleTensor).

    Args:
        request_input: a `tensorflow.serving.Input` (`apis/input.proto`).
    Returns:
        A list of serialized `tf.train.Example`s (bytes), one per example; with a context,
        its bytes are put before each example's (parsing the concatenation merges them, so
        an example's own feature wins). Empty when the input holds no example.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        return [context + e.SerializeToString() for e in listed.examples]
    return [e.SerializeToString() for e in request_input.example_list.examples]
