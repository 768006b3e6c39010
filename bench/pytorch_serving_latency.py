"""Latency of PyTorch `transformers`' ELECTRA-Small classifier, the reference for
`bench/serving_latency.py --classifier` (the same shapes: H=256, 12 layers, 4 heads, E=128,
V=30522, 2 labels, every input S=128 tokens, random weights).

Runs in a throwaway environment, not the project's (PyTorch is no dependency of ours):

    python3 -m venv /tmp/torch-venv
    /tmp/torch-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/torch-venv/bin/pip install transformers
    /tmp/torch-venv/bin/python bench/pytorch_serving_latency.py [--batch-sizes 1,32]

Prints the CPU, the thread count and, per batch size, p50/p90/p99 of `model(...)` under
`torch.inference_mode()` (after 3 untimed calls), as `serving_latency.py` prints ours;
with `--json`, after that first line, one JSON object per batch size ({"batch", "p50_ms",
"p90_ms", "p99_ms"}) instead of the table: how `serving_latency.py --pytorch-python` runs
it beside ours.
"""

import argparse
import json
import platform
import time

import numpy as np
import torch
from transformers import ElectraConfig, ElectraForSequenceClassification


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="one JSON line per batch size")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=30522, embedding_size=128, hidden_size=256,
                           num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024,
                           max_position_embeddings=512, num_labels=2)
    model = ElectraForSequenceClassification(config).eval()
    print(f"{platform.processor() or platform.machine()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; S={args.seq_len}, {args.iterations} timed calls",
          flush=True)
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        ids = torch.randint(1000, 30000, (batch, args.seq_len))
        mask = torch.ones(batch, args.seq_len, dtype=torch.long)
        with torch.inference_mode():
            for _ in range(3):
                model(input_ids=ids, attention_mask=mask)
            times = []
            for _ in range(args.iterations):
                start = time.perf_counter()
                model(input_ids=ids, attention_mask=mask).logits.numpy()
                times.append(time.perf_counter() - start)
        p50, p90, p99 = (float(np.percentile(times, q)) * 1000 for q in (50, 90, 99))
        if args.json:
            print(json.dumps({"batch": batch, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99}),
                  flush=True)
            continue
        print(f"batch {batch:3d}  PyTorch transformers  {p50:8.1f} {p90:8.1f} {p99:8.1f}  "
              f"{batch / p50 * 1000:8.1f} seq/s")


if __name__ == "__main__":
    main()
