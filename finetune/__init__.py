"""Fine-tuning ELECTRA on GLUE, SQuAD and tagging tasks (to be built: issues 5 and 6)."""
