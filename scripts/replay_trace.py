#!/usr/bin/env python3
"""Load a backprop trace (out/trace.safetensors) and replay its steps in PyTorch.

Usage: python scripts/replay_trace.py out/trace.safetensors

For every step t it puts the manual model's weights before the step into a torch.nn model
(torch's Linear.weight is the transpose of the trace's W{k}, which is n_{k-1} x n_k), runs the
recorded batch through the recorded loss (0.5 * sum of squares, divided by the batch's sample count
with reduction "mean", mse_loss, or cross_entropy with the recorded label_smoothing), plus the
recorded L2 penalty l2/2 * sum_k |W^k|^2 on the weights only, takes autograd's gradients and one
step of the recorded torch.optim optimizer (SGD, Adam, AdamW or RMSprop with the recorded
hyperparameters, at the step's own lr where the trace records `lr`), which keeps its own state from
step to step, and checks against the trace: the manual gradients, the updated weights
and, where recorded (manual.step{t}.state.{name}.W{k}), the optimizer's state (exp_avg, ...).
Prints the largest differences and exits 1 if any exceeds 1e4 ulps of the trace's dtype,
relative to max(|value|, 1).
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


def optimizer(config, params):
    """torch.optim's optimizer as the trace's config names it (plain SGD when it names none)."""
    name, lr, wd = config.get("optimizer", "sgd"), config["lr"], config.get("weight_decay", 0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.get("momentum", 0.0),
                               dampening=config.get("dampening", 0.0), nesterov=config.get("nesterov", False),
                               weight_decay=wd, foreach=False)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=tuple(config.get("betas", (0.9, 0.999))), eps=config.get("eps", 1e-8),
                   weight_decay=wd, amsgrad=config.get("amsgrad", False), foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=config.get("alpha", 0.99), eps=config.get("eps", 1e-8),
                                   weight_decay=wd, momentum=config.get("momentum", 0.0),
                                   centered=config.get("centered", False), foreach=False)
    raise SystemExit(f"unknown optimizer {name!r}")


def main(path):
    with safe_open(path, framework="pt") as f:
        config = json.loads(f.metadata()["config"])
        t = {name: f.get_tensor(name) for name in f.keys()}
    layers, acts, bias = config["layers"], config["activations"], config["bias"]
    depth = len(layers) - 1
    steps = sum(1 for name in t if name.startswith("batch."))
    x, y = t["x"], t["y"]

    model = torch.nn.Sequential(*[torch.nn.Linear(layers[k], layers[k + 1], bias=bias) for k in range(depth)])
    model = model.to(x.dtype)
    opt = optimizer(config, model.parameters())

    def forward(z):
        for lin, name in zip(model, acts):
            z = ACTIVATIONS[name](lin(z))
        return z

    def data_loss(out, target):
        if config["loss"] == "half-sse":
            e = 0.5 * ((out - target) ** 2).sum()
            return e / out.shape[0] if config.get("reduction", "sum") == "mean" else e
        if config["loss"] == "cross-entropy":
            return torch.nn.functional.cross_entropy(out, target, label_smoothing=config.get("label_smoothing", 0.0))
        return torch.nn.functional.mse_loss(out, target)

    l2 = config.get("l2", 0.0)

    def loss_of(out, target):
        e = data_loss(out, target)
        if l2:  # the weights only: the biases are not penalised
            e = e + 0.5 * l2 * sum((lin.weight ** 2).sum() for lin in model)
        return e

    lrs = t.get("lr")

    eps = torch.finfo(x.dtype).eps
    worst = {"loss": 0.0, "dW": 0.0, "W": 0.0}
    states = 0
    scale = lambda ref: max(ref.abs().max().item(), 1.0)
    for step in range(steps):
        prefix = "init" if step == 0 else f"manual.step{step - 1}"
        with torch.no_grad():
            for k, lin in enumerate(model, start=1):
                lin.weight.copy_(t[f"{prefix}.W{k}"].T)  # the one transpose: seed layout -> torch
                if bias:
                    lin.bias.copy_(t[f"{prefix}.b{k}"])
        idx = t[f"batch.{step}"]
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[step].item()
        opt.zero_grad()
        loss = loss_of(forward(x[idx]), y[idx])
        loss.backward()
        if "manual.loss" in t:
            want = t["manual.loss"][step]
            worst["loss"] = max(worst["loss"], abs(loss.item() - want.item()) / scale(want))
        for k, lin in enumerate(model, start=1):
            g = t[f"manual.step{step}.dW{k}"]
            worst["dW"] = max(worst["dW"], (lin.weight.grad.T - g).abs().max().item() / scale(g))
        opt.step()
        for k, lin in enumerate(model, start=1):
            w = t[f"manual.step{step}.W{k}"]
            worst["W"] = max(worst["W"], (lin.weight.detach().T - w).abs().max().item() / scale(w))
            tensors = [(lin.weight, "W", lambda v: v.T)] + ([(lin.bias, "b", lambda v: v)] if bias else [])
            for param, kind, to_sheet in tensors:
                for name, value in opt.state[param].items():
                    key = f"manual.step{step}.state.{name}.{kind}{k}"
                    if key in t:
                        err = (to_sheet(value) - t[key]).abs().max().item() / scale(t[key])
                        worst[name] = max(worst.get(name, 0.0), err)
                        states += 1

    limit = 1e4 * eps
    print(f"replayed {steps} steps of {'-'.join(map(str, layers))} ({config['dtype']}, "
          f"{config.get('optimizer', 'sgd')}, {config['loss']}"
          + (f", {states} optimizer state tensors" if states else "") + "): "
          + ", ".join(f"max {k} error {v:.3e}" for k, v in worst.items()) + f" (limit {limit:.1e})")
    return 0 if all(v <= limit for v in worst.values()) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
