#!/usr/bin/env python3
"""Load a backprop trace (out/trace.safetensors) and replay its steps in PyTorch.

Usage: python scripts/replay_trace.py out/trace.safetensors

For every step t it puts the manual model's weights before the step into a torch.nn model
(torch's Linear.weight is the transpose of the trace's W{k}, which is n_{k-1} x n_k), runs the
recorded batch, takes autograd's gradients and one torch.optim.SGD step, and checks them
against the trace: the manual gradients and updated weights, and the reference's. Prints the
largest differences and exits 1 if any exceeds the trace's tolerance.
"""
import json
import sys

import torch
from safetensors import safe_open

ACTIVATIONS = {
    "identity": lambda a: a,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky-relu": lambda a: torch.nn.functional.leaky_relu(a, 0.01),
    "elu": torch.nn.functional.elu,
    "softplus": torch.nn.functional.softplus,
    "gelu": torch.nn.functional.gelu,
    "silu": torch.nn.functional.silu,
}


def main(path):
    with safe_open(path, framework="pt") as f:
        config = json.loads(f.metadata()["config"])
        t = {name: f.get_tensor(name) for name in f.keys()}
    layers, acts, bias = config["layers"], config["activations"], config["bias"]
    depth = len(layers) - 1
    steps = t["manual.loss"].shape[0]
    x, y = t["x"], t["y"]

    model = torch.nn.Sequential(*[torch.nn.Linear(layers[k], layers[k + 1], bias=bias) for k in range(depth)])
    model = model.to(x.dtype)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])

    def forward(z):
        for lin, name in zip(model, acts):
            z = ACTIVATIONS[name](lin(z))
        return z

    def loss_of(out, target):
        if config["loss"] == "half-sse":
            return 0.5 * ((out - target) ** 2).sum()
        return torch.nn.functional.mse_loss(out, target)

    eps = torch.finfo(x.dtype).eps
    worst = {"loss": 0.0, "dW": 0.0, "W": 0.0}
    for step in range(steps):
        prefix = "init" if step == 0 else f"manual.step{step - 1}"
        with torch.no_grad():
            for k, lin in enumerate(model, start=1):
                lin.weight.copy_(t[f"{prefix}.W{k}"].T)  # the one transpose: seed layout -> torch
                if bias:
                    lin.bias.copy_(t[f"{prefix}.b{k}"])
        idx = t[f"batch.{step}"]
        opt.zero_grad()
        loss = loss_of(forward(x[idx]), y[idx])
        loss.backward()
        scale = lambda ref: max(ref.abs().max().item(), 1.0)
        worst["loss"] = max(worst["loss"], abs(loss.item() - t["manual.loss"][step].item()) / scale(t["manual.loss"][step]))
        for k, lin in enumerate(model, start=1):
            g = t[f"manual.step{step}.dW{k}"]
            worst["dW"] = max(worst["dW"], (lin.weight.grad.T - g).abs().max().item() / scale(g))
        opt.step()
        for k, lin in enumerate(model, start=1):
            w = t[f"manual.step{step}.W{k}"]
            worst["W"] = max(worst["W"], (lin.weight.detach().T - w).abs().max().item() / scale(w))

    limit = 1e4 * eps
    print(f"replayed {steps} steps of {'-'.join(map(str, layers))} ({config['dtype']}): "
          + ", ".join(f"max {k} error {v:.3e}" for k, v in worst.items()) + f" (limit {limit:.1e})")
    return 0 if all(v <= limit for v in worst.values()) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
