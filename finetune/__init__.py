"""Fine-tuning ELECTRA on GLUE, chunking and QA (spec §2, §8): config, tasks, heads, metrics.

- `finetune.config.FinetuningConfig`: every hyperparameter, the original defaults order.
- `finetune.tasks`: readers and featurisation for cola mrpc mnli sst rte qnli qqp sts chunk,
  and squad squadv1 newsqa naturalqs triviaqa searchqa (`finetune.tasks.qa`).
- `finetune.heads`: classification / regression / tagging heads, losses, original
  fine-tuned checkpoints (`load_finetuned_original`).
- `finetune.qa`: the QA head, decoding and official SQuAD v1.1/v2.0/MRQA scoring.
- `finetune.metrics`: MCC, accuracy, F1, Pearson, Spearman, MSE, chunk entity P/R/F1.
- `finetune.model_dir`: a fine-tuned model directory, written and read back.
- `finetune.run_finetuning`: the command line (`--data-dir --model-name --hparams`).
"""
