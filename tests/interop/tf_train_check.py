#!/usr/bin/env python3
"""Training cross-check against TensorFlow.

Runs train_dump (tests/interop/train_dump.cc), which writes, for the example
digits_mlp and digits_cnn with fresh random weights: a random batch and the
gradients of the mean sparse softmax cross-entropy that gradserve's AddGradients
computes on it; then 10 Adam steps (learning rate 0.01, Keras's defaults
otherwise) of gradserve's Trainer on fresh batches, with the weights and Adam
slots before every step, each step's gradients (fetched in the same run as the
update) and loss, and the final state. This script builds the same models in
TensorFlow and checks, with normwise relative error
max|got - want| / max|want| <= 1e-5:

  * the gradients equal tf.GradientTape's on the same weights and inputs;
  * at every Adam step, from gradserve's weights before the step: its loss and
    gradients equal TensorFlow's, and TensorFlow's Adam (tf.raw_ops.
    ResourceApplyAdam on the same weights, slots and gradients) gives the same
    weights and slots after the step, so all 10 steps give the same weights.

Normwise, as in tf_interop.py: float32 sums in another order change small
elements relative to their own size; an error shows at the scale of the tensor.
Each step starts from gradserve's state rather than from TensorFlow's own
trajectory because two float32 trajectories part after a few steps (a ReLU input
within rounding of 0 takes the other side, and Adam scales every element's step
to a full learning rate whatever its gradient's size); the script prints how far
TensorFlow's free-running trajectory ends from gradserve's, for information.

Usage: tf_train_check.py --train-dump PATH [--seed N] [--work-dir DIR]
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

TOLERANCE = 1e-5
STEPS = 10
LEARNING_RATE = 0.01

MODELS = {
    "digits_mlp": ["dense1/kernel", "dense1/bias", "dense2/kernel", "dense2/bias",
                   "dense3/kernel", "dense3/bias"],
    "digits_cnn": ["conv/kernel", "conv/bias", "dense/kernel", "dense/bias"],
}


def npy(path):
    return np.load(path)


def var_file(name):
    return name.replace("/", "__") + ".npy"


def logits_of(model, w, x):
    if model == "digits_mlp":
        h = tf.nn.relu(tf.matmul(x, w["dense1/kernel"]) + w["dense1/bias"])
        h = tf.nn.relu(tf.matmul(h, w["dense2/kernel"]) + w["dense2/bias"])
        return tf.matmul(h, w["dense3/kernel"]) + w["dense3/bias"]
    h = tf.nn.conv2d(x, w["conv/kernel"], strides=1, padding="SAME")
    h = tf.nn.relu(tf.nn.bias_add(h, w["conv/bias"]))
    h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
    h = tf.reshape(h, [-1, 128])
    return tf.matmul(h, w["dense/kernel"]) + w["dense/bias"]


def loss_of(model, w, x, labels):
    xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                          logits=logits_of(model, w, x))
    return tf.reduce_mean(xent)


def rel_err(got, want):
    scale = float(np.max(np.abs(want))) or 1.0
    return float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) / scale


def check_model(model, root):
    d = os.path.join(root, model)
    failures = []
    worst = {}
    names = MODELS[model]

    def load_vars(sub):
        return {n: tf.Variable(npy(os.path.join(d, sub, var_file(n))), name=n.replace("/", "_"))
                for n in names}

    def compare(what, got, want, kind=None):
        """Checks one tensor; per-step checks (kind set) print only failures."""
        err = rel_err(got, want)
        status = "ok" if err <= TOLERANCE and got.shape == want.shape else "FAIL"
        if kind:
            worst[kind] = max(worst.get(kind, 0.0), err)
        if status != "ok" or not kind:
            print(f"  {model:10s} {what:32s} rel err {err:.2e} {status}")
        if status != "ok":
            failures.append(f"{model} {what}: rel err {err:.3e}, shapes {got.shape} {want.shape}")

    # Gradients on one batch.
    w = load_vars("init")
    x = npy(os.path.join(d, "x.npy"))
    labels = npy(os.path.join(d, "labels.npy"))
    with tf.GradientTape() as tape:
        loss = loss_of(model, w, x, labels)
    grads = tape.gradient(loss, [w[n] for n in names])
    for n, g in zip(names, grads):
        compare(f"grad {n}", npy(os.path.join(d, "grads", var_file(n))), g.numpy())

    # 10 Adam steps, each from gradserve's state before it.
    b1, b2, eps = 0.9, 0.999, 1e-7

    def state(i, suffix=""):
        return {n: npy(os.path.join(d, "steps", str(i), var_file(n)[:-4] + suffix + ".npy"))
                for n in names}

    losses = npy(os.path.join(d, "losses.npy"))
    for i in range(STEPS):
        sd = os.path.join(d, "steps", str(i))
        xi, li = npy(os.path.join(sd, "x.npy")), npy(os.path.join(sd, "labels.npy"))
        w = {n: tf.Variable(v) for n, v in state(i).items()}
        with tf.GradientTape() as tape:
            loss = loss_of(model, w, xi, li)
        grads = tape.gradient(loss, [w[n] for n in names])
        compare(f"step {i} loss", np.array([losses[i]]), np.array([float(loss.numpy())]),
                "loss")
        mine = {n: npy(os.path.join(sd, "grad_" + var_file(n))) for n in names}
        for n, g in zip(names, grads):
            compare(f"step {i} grad {n}", mine[n], g.numpy(), "grad")
        m, v = state(i, ".m"), state(i, ".v")
        after, m_after, v_after = state(i + 1), state(i + 1, ".m"), state(i + 1, ".v")
        t = i + 1
        # beta^t in float32, as Keras's Adam and gradserve compute it (1 - beta2^t
        # cancels, so a power rounded from float64 differs in the 5th digit).
        power = lambda beta, t: np.power(np.float32(beta), np.float32(t))  # noqa: E731
        for n in names:
            var, mv, vv = tf.Variable(w[n]), tf.Variable(m[n]), tf.Variable(v[n])
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=mv.handle, v=vv.handle, beta1_power=power(b1, t),
                beta2_power=power(b2, t), lr=np.float32(LEARNING_RATE),
                beta1=np.float32(b1), beta2=np.float32(b2), epsilon=np.float32(eps),
                grad=mine[n])
            compare(f"step {i} Adam {n}", after[n], var.numpy(), "Adam")
            compare(f"step {i} Adam m {n}", m_after[n], mv.numpy(), "Adam")
            compare(f"step {i} Adam v {n}", v_after[n], vv.numpy(), "Adam")

    # For information: TensorFlow's own trajectory with Keras's Adam.
    w = {n: tf.Variable(v) for n, v in state(0).items()}
    opt = tf.keras.optimizers.Adam(learning_rate=LEARNING_RATE, beta_1=b1, beta_2=b2, epsilon=eps)
    for i in range(STEPS):
        sd = os.path.join(d, "steps", str(i))
        with tf.GradientTape() as tape:
            loss = loss_of(model, w, npy(os.path.join(sd, "x.npy")),
                           npy(os.path.join(sd, "labels.npy")))
        grads = tape.gradient(loss, [w[n] for n in names])
        opt.apply_gradients(zip(grads, [w[n] for n in names]))
    final = state(STEPS)
    drift = max(rel_err(final[n], w[n].numpy()) for n in names)
    for kind in ("loss", "grad", "Adam"):
        print(f"  {model:10s} 10 steps: worst {kind:4s} rel err {worst.get(kind, 0):.2e}")
    print(f"  {model:10s} (info) free-running Keras Adam, 10 steps: weights rel err {drift:.2e}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dump", required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31)
    print(f"seed {seed} (rerun with --seed {seed})")
    work = args.work_dir or tempfile.mkdtemp(prefix="tf_train_check_")
    try:
        subprocess.run([args.train_dump, "--out", work, "--seed", str(seed)], check=True)
        failures = []
        for model in MODELS:
            failures += check_model(model, work)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all gradients and Adam steps match TensorFlow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
