"""Fine-tuning ELECTRA on GLUE, chunking and QA (documented in docs/finetuning.md).

- `config`: `FinetuningConfig`, every hyperparameter in the original's defaults order.
- `tasks`: readers and featurisation for cola mrpc mnli sst rte qnli qqp sts chunk, and
  squad squadv1 newsqa naturalqs triviaqa searchqa (`tasks.qa`).
- `heads`: the classification, regression and tagging heads and their losses.
- `qa`: the QA head, decoding and the official SQuAD v1.1/v2.0/MRQA scoring.
- `model`: `FinetuningModel` (encoder + one head per task) and its summed loss.
- `weights`: a pretrained encoder, or an original fine-tuned checkpoint, into a model.
- `metrics`: MCC, accuracy, F1, Pearson, Spearman, MSE, chunk entity P/R/F1.
- `records`: featurised records of a split, cached as TFRecords.
- `trainer`: the optimizer, the training loop and prediction.
- `outputs`: results files, test-set predictions and GLUE submission files.
- `trials`: `run_finetuning(config)`, the trials of a run.
- `model_dir`: a fine-tuned model directory, written and read back.
- `serving`: its TF Serving endpoints (`build_serving_module`).
- `synthetic`: generated, learnable GLUE- and SQuAD-format data.
- `run_finetuning`: the command line (`--data-dir --model-name --hparams`).
"""
