"""Question answering: the head, decoding and scoring (its in-graph decoding for serving is
`finetune.serving.task_outputs.best_span`)."""
