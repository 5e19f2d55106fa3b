#!/usr/bin/env python3
"""The exercise sheet's network, trained by backpropagation written in numpy, recorded, and checked
against libtorch by this repository's `check`.

    scripts/python examples/python/sheet_numpy.py             # right: check says EQUIVALENT
    scripts/python examples/python/sheet_numpy.py --mistake   # delta^1 without phi': step 0, layer 1

From any directory. Options: --out DIR (default out/numpy), --check PATH (the check binary; default
this repository's target/release/check), --no-check (record only). Needs numpy and safetensors (the
setup's Python: scripts/python).
"""
import argparse
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
sys.path.insert(0, os.path.join(ROOT, "python"))
from backprop_trace import Recorder  # noqa: E402

LAYERS = [1, 16, 16, 1]  # n_0 .. n_L
LR = 0.01
STEPS = 50
BATCH = 32


def forward(Ws, x):
    """Eqs (1)-(3) for a batch (one sample per row): a^k = z^{k-1} W^k, z^k = phi_k(a^k); tanh hidden,
    identity output. Returns the a^k and z^k of every layer (z[0] = x)."""
    a, z = [None], [x]
    for k, W in enumerate(Ws, start=1):
        a.append(z[-1] @ W)
        z.append(np.tanh(a[-1]) if k < len(Ws) else a[-1])
    return a, z


def backprop(Ws, x, y, mistake=False):
    """E = 1/2 sum |y_hat - y|^2 (5), delta^L = phi'_L(a^L)(y - y_hat), delta^k = phi'_k(a^k) sum_i W^{k+1}_ji
    delta^{k+1}_i (7), dE/dW^k_ij = sum_n z^{k-1}_i delta^k_j (6). With `mistake`, delta^1 forgets phi'_1."""
    a, z = forward(Ws, x)
    L = len(Ws)
    E = 0.5 * np.sum((z[L] - y) ** 2)
    delta = z[L] - y                       # identity output: phi'_L = 1
    dWs = [None] * L
    for k in range(L, 0, -1):
        dWs[k - 1] = z[k - 1].T @ delta    # (6), summed over the batch
        if k > 1:
            s = delta @ Ws[k - 1].T        # sum_i W^k_ji delta^k_i
            phi_prime = 1.0 - np.tanh(a[k - 1]) ** 2
            delta = s if (mistake and k - 1 == 1) else phi_prime * s   # (7)
    return E, dWs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mistake", action="store_true")
    p.add_argument("--out", default="out/numpy")
    p.add_argument("--check", default=os.path.join(ROOT, "target", "release", "check"))
    p.add_argument("--no-check", action="store_true")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(256, 1))
    y = np.sin(x)
    # torch's nn.Linear initialisation, U(-1/sqrt(n_{k-1}), 1/sqrt(n_{k-1})), no biases (the sheet's network).
    Ws = [rng.uniform(-1, 1, size=(n, m)) / np.sqrt(n) for n, m in zip(LAYERS[:-1], LAYERS[1:])]

    rec = Recorder(LAYERS, ["tanh", "tanh", "identity"], x, y, Ws, biases=None, loss="half-sse", lr=LR)
    for t in range(STEPS):
        idx = rng.choice(len(x), size=BATCH, replace=False)
        E, dWs = backprop(Ws, x[idx], y[idx], mistake=args.mistake)
        Ws = [W - LR * dW for W, dW in zip(Ws, dWs)]   # Delta W = -eta dE/dW
        rec.step(idx, loss=E, dW=dWs, W=Ws)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "trace.safetensors")
    rec.save(path)
    print(f"recorded {STEPS} steps of {'-'.join(map(str, LAYERS))} into {path}")
    if args.no_check:
        return 0
    return subprocess.run([args.check, path, "--out", args.out, "--quiet"]).returncode


if __name__ == "__main__":
    sys.exit(main())
