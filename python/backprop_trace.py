"""Record what your own backpropagation computed, so that `check` can verify it against libtorch.

Needs numpy and safetensors only (no torch). In a notebook:

    import sys; sys.path.append("path/to/backprop/python")
    from backprop_trace import Recorder

    rec = Recorder(layers=[1, 16, 1], activations=["tanh", "identity"], x=X, y=Y,
                   weights=[W1, W2], biases=None, loss="half-sse", lr=0.01)
    for t in range(steps):
        idx = ...                                   # the sample indices of this step's batch
        E, dWs, dbs = my_backprop(Ws, bs, X[idx], Y[idx])
        Ws = [W - lr * dW for W, dW in zip(Ws, dWs)]
        rec.step(idx, loss=E, dW=dWs, W=Ws)         # every keyword is optional
    rec.save("my_trace.safetensors")

then, from the repository: `cargo run --release --bin check -- my_trace.safetensors`.

The trace format (README, "Check your own backprop"): tensors `x` [N, n0], `y` [N, nL], `init.W{k}`,
`init.b{k}`, `batch.{t}` (int64 sample indices), `manual.loss` [T], `manual.step{t}.dW{k}`, `.db{k}`,
`.W{k}`, `.b{k}` (the last two after the step's update), in the sheet's orientation: W^k is
n_{k-1} x n_k, row i an input unit, column j an output unit. torch's `Linear.weight` is the
transpose: pass `layout="torch"` and the recorder transposes every weight and gradient it is given.
Steps count from 0, layers from 1. The metadata key `config` holds a JSON object with `layers`,
`activations`, `bias`, `loss`, `lr` and `dtype`, and, where they apply, `label_smoothing` and the
optimizer with PyTorch's names: `optimizer` ("sgd", "adam", "adamw", "rmsprop"), `momentum`,
`dampening`, `nesterov`, `weight_decay`, `betas`, `eps`, `amsgrad`, `alpha`, `centered`. An optimizer
other than plain SGD carries state from step to step, so such a trace records every step from 0 with
its updated weights; the state itself may be recorded too (`state=` in `Recorder.step`:
`manual.step{t}.state.{name}.W{k}`, `.b{k}`, PyTorch's names: exp_avg, exp_avg_sq, max_exp_avg_sq,
momentum_buffer, square_avg, grad_avg), which scripts/replay_trace.py compares with torch.optim's.
"""
import json

import numpy as np
from safetensors.numpy import save_file

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky-relu", "elu", "softplus", "gelu", "silu")
LOSSES = ("half-sse", "mse", "cross-entropy")
OPTIMIZERS = {
    "sgd": {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False, "weight_decay": 0.0},
    "adamw": {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False, "weight_decay": 1e-2},
    "rmsprop": {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False, "weight_decay": 0.0},
}


class Recorder:
    """Collects one training run: the data, the initial weights, and per step what your code computed.

    layers:      widths [n0, ..., nL].
    activations: one name per layer k = 1..L, or one name for every hidden layer (the output is then
                 identity). Names: identity, sigmoid, tanh, relu, leaky-relu, elu, softplus, gelu, silu.
    x, y:        inputs [N, n0] and targets [N, nL].
    weights:     the initial W^1..W^L (n_{k-1} x n_k; n_k x n_{k-1} with layout="torch").
    biases:      the initial b^1..b^L, or None for a network without biases (the sheet's).
    loss:        "half-sse" (E = 1/2 sum |y_hat - y|^2, the sheet's eq. (5)), "mse" (the mean) or
                 "cross-entropy" (softmax over the identity output layer, mean over the batch, targets
                 one-hot or probabilities), with label_smoothing (cross-entropy only).
    lr:          the learning rate eta.
    optimizer:   "sgd" (default; W <- W - eta dE/dW without further settings), "adam", "adamw" or
                 "rmsprop", with torch.optim's keywords and defaults given as keyword arguments
                 (momentum, dampening, nesterov, weight_decay, betas, eps, amsgrad, alpha, centered).
    dtype:       "f32" or "f64" (default: x's dtype); every array is stored in it.
    layout:      "sheet" (default) or "torch".
    """

    def __init__(self, layers, activations, x, y, weights, biases=None, *, loss="half-sse", lr,
                 dtype=None, layout="sheet", label_smoothing=0.0, optimizer="sgd", **hyperparameters):
        self.layers = [int(n) for n in layers]
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(f"layers: need at least two widths, each >= 1, got {layers}")
        depth = len(self.layers) - 1
        if isinstance(activations, str):
            activations = [activations] * (depth - 1) + ["identity"] if depth > 1 else [activations]
        self.activations = list(activations)
        if len(self.activations) != depth:
            raise ValueError(f"activations: {len(self.activations)} given for {depth} layers")
        for a in self.activations:
            if a not in ACTIVATIONS:
                raise ValueError(f"activations: unknown {a!r} (one of {', '.join(ACTIVATIONS)})")
        if loss not in LOSSES:
            raise ValueError(f"loss: unknown {loss!r} (one of {', '.join(LOSSES)})")
        if layout not in ("sheet", "torch"):
            raise ValueError(f"layout: 'sheet' or 'torch', got {layout!r}")
        x = np.asarray(x)
        dtype = dtype or {np.dtype("float32"): "f32"}.get(x.dtype, "f64")
        if dtype not in ("f32", "f64"):
            raise ValueError(f"dtype: 'f32' or 'f64', got {dtype!r}")
        self.np_dtype = np.float32 if dtype == "f32" else np.float64
        self.config = {"layers": self.layers, "activations": self.activations, "bias": biases is not None,
                       "loss": loss, "lr": float(lr), "dtype": dtype}
        if label_smoothing:
            if loss != "cross-entropy":
                raise ValueError("label_smoothing: applies to loss='cross-entropy' only")
            self.config["label_smoothing"] = float(label_smoothing)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: unknown {optimizer!r} (one of {', '.join(OPTIMIZERS)})")
        known = OPTIMIZERS[optimizer]
        for name in hyperparameters:
            if name not in known:
                raise ValueError(f"{name}: not a setting of optimizer {optimizer!r} (it takes {', '.join(known)})")
        self.config["optimizer"] = optimizer
        for name, default in known.items():
            value = hyperparameters.get(name, default)
            self.config[name] = [float(v) for v in value] if name == "betas" else value
        self.layout = layout
        self.tensors = {"x": self._array("x", x, (None, self.layers[0])),
                        "y": self._array("y", y, (None, self.layers[-1]))}
        if self.tensors["x"].shape[0] != self.tensors["y"].shape[0]:
            raise ValueError(f"x has {self.tensors['x'].shape[0]} rows, y {self.tensors['y'].shape[0]}")
        self._params("init", weights, biases, grads=False)
        self.losses = []
        self.steps = 0

    def _array(self, name, a, shape):
        a = np.ascontiguousarray(np.asarray(a, dtype=self.np_dtype))
        if a.ndim != len(shape) or any(want is not None and got != want for got, want in zip(a.shape, shape)):
            raise ValueError(f"{name}: shape {a.shape}, expected {tuple('N' if s is None else s for s in shape)}")
        return a

    def _params(self, prefix, weights, biases, grads):
        w_name, b_name = ("dW", "db") if grads else ("W", "b")
        depth = len(self.layers) - 1
        if weights is not None:
            if len(weights) != depth:
                raise ValueError(f"{prefix}: {len(weights)} weight matrices for {depth} layers")
            for k, w in enumerate(weights, start=1):
                w = np.asarray(w)
                if self.layout == "torch":
                    w = w.T  # torch's Linear.weight (n_k x n_{k-1}) -> the sheet's W^k
                shape = (self.layers[k - 1], self.layers[k])
                self.tensors[f"{prefix}.{w_name}{k}"] = self._array(f"{prefix}.{w_name}{k}", w, shape)
        if biases is not None:
            if not self.config["bias"]:
                raise ValueError(f"{prefix}: biases given for a network recorded without them")
            if len(biases) != depth:
                raise ValueError(f"{prefix}: {len(biases)} bias vectors for {depth} layers")
            for k, b in enumerate(biases, start=1):
                self.tensors[f"{prefix}.{b_name}{k}"] = self._array(f"{prefix}.{b_name}{k}", np.ravel(b),
                                                                    (self.layers[k],))

    def step(self, batch, *, loss=None, dW=None, db=None, W=None, b=None, state=None):
        """Records step t (0, 1, ... in call order): the batch's sample indices, and whatever your code
        computed: the loss E before the update, the gradients dE/dW^k, dE/db^k, the weights and biases
        after the update, and the optimizer's state after it as {name: (Ws, bs)} (bs may be None),
        with PyTorch's names (exp_avg, ...). Give the same items at every step (the loss at all or
        none)."""
        t = self.steps
        idx = np.asarray(batch, dtype=np.int64).ravel()
        n = self.tensors["x"].shape[0]
        if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"batch.{t}: indices must lie in 0..{n - 1}")
        self.tensors[f"batch.{t}"] = idx
        if loss is not None:
            if len(self.losses) != t:
                raise ValueError(f"step {t}: a loss, but none at the steps before")
            self.losses.append(float(loss))
        elif self.losses:
            raise ValueError(f"step {t}: no loss, but the steps before have one")
        self._params(f"manual.step{t}", dW, db, grads=True)
        self._params(f"manual.step{t}", W, b, grads=False)
        for name, (ws, bs) in (state or {}).items():
            self._params(f"manual.step{t}.state.{name}", ws, bs, grads=False)
        self.steps += 1

    def save(self, path):
        """Writes the trace (safetensors, with the config as metadata)."""
        tensors = dict(self.tensors)
        if self.losses:
            tensors["manual.loss"] = np.asarray(self.losses, dtype=self.np_dtype)
        save_file(tensors, str(path), metadata={"config": json.dumps(self.config)})
