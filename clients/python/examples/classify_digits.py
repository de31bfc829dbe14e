#!/usr/bin/env python3
"""Classifies the UCI handwritten digits with a running gradserve and prints
the accuracy; with --train, also sends one batch of labelled examples to the
model's trainer (online fine-tuning) and shows the step it made.

    gradserve --model-repository=configs/models &
    python classify_digits.py --url localhost:8001 [--train]

The model (digits_mlp, or digits_cnn) takes "pixels", FP32 [n, 64]: an 8x8
image, row-major, scaled to [0, 1]; it returns "logits" and "probabilities",
FP32 [n, 10]. The data set (configs/datasets/digits/digits.csv.gz) holds
1,797 lines of 64 pixels valued 0-16, then the label.
"""

import argparse
import gzip
import os
import sys

import numpy as np

from gradserve_client import Client, GradserveError

_DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                             "configs", "datasets", "digits", "digits.csv.gz")


def load_digits(path):
    """(pixels FP32 [n, 64] in [0, 1], labels INT64 [n]) from the CSV."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return (table[:, :64] / 16.0).astype(np.float32), table[:, 64]


def classify(client, model, pixels, batch_size):
    """The predicted class of every example, in requests of batch_size."""
    predictions = []
    for start in range(0, len(pixels), batch_size):
        result = client.infer(model, {"pixels": pixels[start:start + batch_size]},
                              outputs=["probabilities"])
        predictions.append(result["probabilities"].argmax(axis=1))
    return np.concatenate(predictions)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="localhost:8001", help="the server's gRPC host:port")
    parser.add_argument("--model", default="digits_mlp")
    parser.add_argument("--data", default=_DEFAULT_DATA, help="digits.csv.gz")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="examples per request (at most the model's max_batch_size)")
    parser.add_argument("--train", action="store_true",
                        help="also send one Train call with the first 32 examples")
    args = parser.parse_args()

    pixels, labels = load_digits(args.data)
    try:
        with Client(args.url, timeout=30) as client:
            if not client.ready(args.model):
                sys.exit(f"model {args.model} is not ready on {args.url}")
            predicted = classify(client, args.model, pixels, args.batch_size)
            accuracy = float(np.mean(predicted == labels))
            print(f"{args.model}: accuracy {accuracy:.4f} on {len(labels)} digits")
            if args.train:
                step = client.train(args.model, pixels[:32], labels[:32])
                print(f"train: loss {step.loss:.4f}, step {step.step}, weights generation "
                      f"{step.weights_generation}, {step.examples_in_step} examples in the step")
                status = client.training_status(args.model)
                print(f"training status: {status.optimizer}, batch size {status.batch_size}, "
                      f"{status.steps_applied} steps applied since the server started")
    except GradserveError as e:
        sys.exit(f"{args.url}: {e.code}: {e.message}")


if __name__ == "__main__":
    main()
