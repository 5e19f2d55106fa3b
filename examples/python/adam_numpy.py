#!/usr/bin/env python3
"""A classifier written in numpy: softmax cross-entropy and Adam by hand, recorded with the optimizer's
state, and checked against libtorch's autograd and torch::optim by this repository's `check`.

    scripts/python examples/python/adam_numpy.py            # right: check says EQUIVALENT
    scripts/python examples/python/adam_numpy.py --mistake  # Adam without its bias corrections:
                                                            # check names step 0, the updated weights

Options: --out DIR (default out/adam-numpy), --check PATH (the check binary; default
this repository's target/release/check), --no-check (record only). Needs numpy and safetensors.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
sys.path.insert(0, os.path.join(ROOT, "python"))
from backprop_trace import Recorder  # noqa: E402

LAYERS = [2, 16, 16, 3]  # n_0 .. n_L: three classes
LR, BETAS, EPS = 0.01, (0.9, 0.999), 1e-8
STEPS = 40
BATCH = 32


def forward(Ws, bs, x):
    """a^k = z^{k-1} W^k + b^k (2), z^k = tanh(a^k) for hidden layers; the output layer is the identity,
    its a^L the logits."""
    a, z = [None], [x]
    for k, (W, b) in enumerate(zip(Ws, bs), start=1):
        a.append(z[-1] @ W + b)
        z.append(np.tanh(a[-1]) if k < len(Ws) else a[-1])
    return a, z


def backprop(Ws, bs, x, y):
    """E = -(1/N) sum_n sum_c y_nc log softmax(a^L_n)_c with a shifted log-sum-exp; delta^L = (softmax(a^L) - y)/N,
    delta^k = phi'_k(a^k) sum_i W^{k+1}_ji delta^{k+1}_i (7), dE/dW^k = z^{k-1}^T delta^k (6), dE/db^k = sum_n delta^k."""
    a, z = forward(Ws, bs, x)
    n = x.shape[0]
    logits = a[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    E = -(y * log_p).sum() / n
    delta = (np.exp(log_p) - y) / n
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for k in range(len(Ws), 0, -1):
        dWs[k - 1] = z[k - 1].T @ delta
        dbs[k - 1] = delta.sum(axis=0)
        if k > 1:
            delta = (1.0 - z[k - 1] ** 2) * (delta @ Ws[k - 1].T)
    return E, dWs, dbs


class Adam:
    """torch.optim.Adam by hand: m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
    theta <- theta - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    With `mistake`, the bias corrections 1 - b1^t and 1 - b2^t are left out."""

    def __init__(self, params, mistake=False):
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0
        self.mistake = mistake

    def step(self, params, grads):
        self.t += 1
        b1, b2 = BETAS
        c1, c2 = (1.0, 1.0) if self.mistake else (1 - b1 ** self.t, 1 - b2 ** self.t)
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            out.append(p - LR / c1 * self.m[i] / (np.sqrt(self.v[i]) / np.sqrt(c2) + EPS))
        return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mistake", action="store_true", help="leave out Adam's bias corrections")
    p.add_argument("--out", default=os.path.join("out", "adam-numpy"))
    p.add_argument("--check", default=os.path.join(ROOT, "target", "release", "check"))
    p.add_argument("--no-check", action="store_true")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    # Three Gaussian blobs, one-hot targets.
    centres = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]])
    classes = rng.integers(0, 3, size=300)
    x = centres[classes] + 0.4 * rng.standard_normal((300, 2))
    y = np.eye(3)[classes]
    # torch's nn.Linear initialisation, U(-1/sqrt(n_{k-1}), 1/sqrt(n_{k-1})) for weights and biases.
    Ws = [rng.uniform(-1, 1, size=(n, m)) / np.sqrt(n) for n, m in zip(LAYERS[:-1], LAYERS[1:])]
    bs = [rng.uniform(-1, 1, size=m) / np.sqrt(n) for n, m in zip(LAYERS[:-1], LAYERS[1:])]

    rec = Recorder(LAYERS, ["tanh", "tanh", "identity"], x, y, Ws, bs, loss="cross-entropy", lr=LR, optimizer="adam", betas=BETAS, eps=EPS)
    opt = Adam(Ws + bs, mistake=args.mistake)
    depth = len(Ws)
    for t in range(STEPS):
        idx = rng.choice(len(x), size=BATCH, replace=False)
        E, dWs, dbs = backprop(Ws, bs, x[idx], y[idx])
        new = opt.step(Ws + bs, dWs + dbs)
        Ws, bs = new[:depth], new[depth:]
        state = {"exp_avg": (opt.m[:depth], opt.m[depth:]), "exp_avg_sq": (opt.v[:depth], opt.v[depth:])}
        rec.step(idx, loss=E, dW=dWs, db=dbs, W=Ws, b=bs, state=state)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "trace.safetensors")
    rec.save(path)
    print(f"recorded {STEPS} Adam steps of {'-'.join(map(str, LAYERS))} (cross-entropy) into {path}")
    if args.no_check:
        return 0
    return subprocess.run([args.check, path, "--out", args.out, "--quiet"]).returncode


if __name__ == "__main__":
    sys.exit(main())
