"""TensorFlow's `saved_model_cli`, with tensorflow-text's ops registered first.

    python -m electra_tf.saved_model_cli show --dir EXPORT_BASE/1 --all
    python -m electra_tf.saved_model_cli run --dir EXPORT_BASE/1 --tag_set serve \
        --signature_def serving_default --input_exprs 'text=["hello world"]'

The exports tokenise text in the graph with tensorflow-text ops (`NormalizeUTF8`,
`FastWordpieceTokenizeWithOffsets`, `RegexSplitWithOffsets`), which TensorFlow alone does
not know: the plain `saved_model_cli run` (and `show --all`, which loads the functions)
fails with "Op type not registered 'NormalizeUTF8'". This runs the same tool, with the same
arguments, after `import tensorflow_text`. tf.Example signatures take `--input_examples`,
e.g. `--signature_def sst_examples --input_examples 'inputs=[{"text":["a fine film"]}]'`.
"""

import importlib.metadata


def run():
    import tensorflow_text  # noqa: F401, PLC0415  (registers the tokenizer ops)

    # TensorFlow's own `saved_model_cli` console script, through its entry point.
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="saved_model_cli")
    script.load()()


if __name__ == "__main__":
    run()
