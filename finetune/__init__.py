"""Fine-tuning ELECTRA on GLUE and chunking (spec §2, §8): config, tasks, heads, metrics.

- `finetune.config.FinetuningConfig`: every hyperparameter, the original defaults order.
- `finetune.tasks`: readers and featurisation for cola mrpc mnli sst rte qnli qqp sts chunk.
- `finetune.heads`: classification / regression / tagging heads, losses, original
  fine-tuned checkpoints (`load_finetuned_original`).
- `finetune.metrics`: MCC, accuracy, F1, Pearson, Spearman, MSE, chunk entity P/R/F1.
- `finetune.run_finetuning`: the command line (`--data-dir --model-name --hparams`).

Question answering (SQuAD, MRQA) is not implemented yet.
"""
