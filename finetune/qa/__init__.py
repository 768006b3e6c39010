"""Question answering: the head, decoding and scoring (spec §8.2, §8.6)."""
