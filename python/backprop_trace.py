"""Record what your own backpropagation computed, so that `check` can verify it against libtorch.

Needs numpy and safetensors only (no torch): the setup's Python has both (`scripts/python`, README). In a
notebook:

    import sys; sys.path.append("path/to/backprop/python")
    from backprop_trace import Recorder

    rec = Recorder(layers=[1, 16, 1], activations=["tanh", "identity"], x=X, y=Y,
                   weights=[W1, W2], biases=None, loss="half-sse", lr=0.01)
    for t in range(steps):
        idx = ...                                   # the sample indices of this step's batch
        E, dWs, dbs = my_backprop(Ws, bs, X[idx], Y[idx])
        for W, dW in zip(Ws, dWs):
            W -= lr * dW                            # in place is fine: step() copies what it is given
        rec.step(idx, loss=E, dW=dWs, W=Ws)         # every keyword is optional
    rec.save("my_trace.safetensors")
    rec.check()                                     # runs `check`; the verdict, where it parts, the report

`step()` copies (and casts to the trace's dtype) every array it is given at the call, so code that
updates its weights in place records each step's own values. Code that draws its batches itself passes
them: `rec.step(x=xb, y=yb, ...)` (x and y may then be left out of the constructor).

Conventions (each in the trace's config, replayed so by `check` and scripts/replay_trace.py):
- `reduction="mean"` (loss "half-sse" only): E = 1/(2m) sum_n |y_hat_n - y_n|^2 over the m samples of
  the batch, and its gradient (Nielsen's (eta/m) sum grad is this with lr=eta). Default "sum", the
  sheet's eq. (5). "mse" (torch's mean over every entry) and "cross-entropy" are means already.
- `l2=lam`: the penalty lam/2 sum_k |W^k|^2 on the weights only (the biases are untouched) is part of E
  and of dE/dW^k = ... + lam W^k, as CS231n's 0.5*reg*sum(W*W) (with lam = reg) and Nielsen's network2.
- `rec.step(..., lr=eta_t)`: the step's own learning rate (schedules, a short last batch); default the
  constructor's lr.
These three are checked with plain SGD (optimizer "sgd", no momentum or weight_decay).

The trace format (README, "Check your own backprop"): tensors `x` [N, n0], `y` [N, nL], `init.W{k}`,
`init.b{k}`, `batch.{t}` (int64 sample indices), `manual.loss` [T], `manual.step{t}.dW{k}`, `.db{k}`,
`.W{k}`, `.b{k}` (the last two after the step's update), and, when a step gave its own lr, `lr` [T]
(f64, every step's), in the sheet's orientation: W^k is n_{k-1} x n_k, row i an input unit, column j
an output unit. torch's `Linear.weight` is the transpose: pass `layout="torch"` and the recorder
transposes every weight and gradient it is given. Batches given as x=, y= are appended to `x` and
`y`, and `batch.{t}` holds their rows' indices. Steps count from 0, layers from 1. The metadata key
`config` holds a JSON object with `layers`, `activations`, `bias`, `loss`, `lr` and `dtype`, and,
where they apply, `reduction` ("mean"), `l2`, `label_smoothing` and the optimizer with PyTorch's names:
`optimizer` ("sgd", "adam", "adamw", "rmsprop"), `momentum`, `dampening`, `nesterov`, `weight_decay`,
`betas`, `eps`, `amsgrad`, `alpha`, `centered`. An optimizer other than plain SGD carries state from
step to step, so such a trace records every step from 0 with its updated weights; the state itself may
be recorded too (`state=` in `Recorder.step`: `manual.step{t}.state.{name}.W{k}`, `.b{k}`, PyTorch's
names: exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer, square_avg, grad_avg), which
scripts/replay_trace.py compares with torch.optim's.
"""
import json
import os
import subprocess
import tempfile

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
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Recorder:
    """Collects one training run: the data, the initial weights, and per step what your code computed.

    layers:      widths [n0, ..., nL].
    activations: one name per layer k = 1..L, the output layer's included, e.g. ["tanh", "identity"].
                 Names: identity, sigmoid, tanh, relu, leaky-relu, elu, softplus, gelu, silu. A single
                 name is accepted for a one-layer network only: the output layer's activation is a
                 choice of its own (identity, or sigmoid as in Nielsen's network), and a guess would
                 fail far from its cause.
    x, y:        inputs [N, n0] and targets [N, nL]; may be left out when every step passes its batch
                 as step(x=..., y=...).
    weights:     the initial W^1..W^L (n_{k-1} x n_k; n_k x n_{k-1} with layout="torch").
    biases:      the initial b^1..b^L, or None for a network without biases (the sheet's).
    loss:        "half-sse" (E = 1/2 sum |y_hat - y|^2, the sheet's eq. (5)), "mse" (torch's mean over
                 every entry) or "cross-entropy" (softmax over the identity output layer, mean over
                 the batch, targets one-hot or probabilities), with label_smoothing (cross-entropy only).
    reduction:   "sum" (default) or "mean" (half-sse only): E divided by the batch's sample count.
    l2:          lam >= 0: lam/2 sum_k |W^k|^2 added to E, lam W^k to dE/dW^k; biases untouched.
    lr:          the learning rate eta (each step may give its own: step(..., lr=)).
    optimizer:   "sgd" (default; W <- W - eta dE/dW without further settings), "adam", "adamw" or
                 "rmsprop", with torch.optim's keywords and defaults given as keyword arguments
                 (momentum, dampening, nesterov, weight_decay, betas, eps, amsgrad, alpha, centered).
    dtype:       "f32" or "f64" (default: x's dtype, or the weights' when x is not given); every array
                 is stored in it.
    layout:      "sheet" (default) or "torch".

    Every mistake is a ValueError (a missing folder in save(): FileNotFoundError) of one sentence
    naming the argument to change.
    """

    def __init__(self, layers, activations, x=None, y=None, weights=None, biases=None, *, loss="half-sse",
                 lr, reduction="sum", l2=0.0, dtype=None, layout="sheet", label_smoothing=0.0,
                 optimizer="sgd", **hyperparameters):
        self.layers = [int(n) for n in layers]
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(f"layers: need at least two widths, each >= 1, got {layers}")
        depth = len(self.layers) - 1
        if isinstance(activations, str):
            if depth > 1:
                raise ValueError(
                    f"activations: give one name per layer, {depth} in all, e.g. "
                    f"{[activations] * (depth - 1) + ['identity']!r}; a single name {activations!r} is "
                    "refused because the output layer's activation is a separate choice")
            activations = [activations]
        self.activations = list(activations)
        if len(self.activations) != depth:
            raise ValueError(f"activations: {len(self.activations)} given for {depth} layers")
        for a in self.activations:
            if a not in ACTIVATIONS:
                raise ValueError(f"activations: unknown {a!r} (one of {', '.join(ACTIVATIONS)})")
        if loss not in LOSSES:
            raise ValueError(f"loss: unknown {loss!r} (one of {', '.join(LOSSES)})")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction: 'sum' or 'mean', got {reduction!r}")
        if reduction == "mean" and loss != "half-sse":
            raise ValueError(f"reduction: applies to loss='half-sse' only ({loss!r} is a mean already)")
        if layout not in ("sheet", "torch"):
            raise ValueError(f"layout: 'sheet' or 'torch', got {layout!r}")
        if weights is None:
            raise ValueError("weights: the initial W^1..W^L are needed")
        if (x is None) != (y is None):
            raise ValueError("x, y: give both (or neither, and pass every batch as step(x=..., y=...))")
        like = np.asarray(x) if x is not None else np.asarray(weights[0])
        dtype = dtype or {np.dtype("float32"): "f32"}.get(like.dtype, "f64")
        if dtype not in ("f32", "f64"):
            raise ValueError(f"dtype: 'f32' or 'f64', got {dtype!r}")
        self.np_dtype = np.float32 if dtype == "f32" else np.float64
        if not (isinstance(lr, (int, float, np.floating, np.integer)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: a finite number > 0, got {lr!r}")
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
        self.plain_sgd = optimizer == "sgd" and not self.config["momentum"] and not self.config["weight_decay"]
        if reduction == "mean":
            if not self.plain_sgd:
                raise ValueError("reduction: 'mean' is checked with plain SGD only (optimizer='sgd', "
                                 "no momentum, weight_decay=0)")
            self.config["reduction"] = "mean"
        if not (np.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2: a finite number >= 0, got {l2!r}")
        if l2:
            if not self.plain_sgd:
                raise ValueError("l2: checked with plain SGD only (optimizer='sgd', no momentum, "
                                 "weight_decay=0); weight_decay decays the biases too")
            self.config["l2"] = float(l2)
        self.layout = layout
        self._rows = 0
        self._xs, self._ys = [], []
        self._constructor_rows = x is not None
        if x is not None:
            self._add_rows("x", x, "y", y)
        self.tensors = {}
        self._params("init", weights, biases, grads=False)
        self.losses = []
        self.lrs = []
        self.steps = 0
        self.saved = None

    def _array(self, name, a, shape):
        # A copy in the trace's dtype: arrays the caller changes later (W -= lr * dW) keep this value.
        a = np.array(a, dtype=self.np_dtype, order="C", copy=True)
        if a.ndim != len(shape) or any(want is not None and got != want for got, want in zip(a.shape, shape)):
            want = tuple("N" if s is None else s for s in shape)
            hint = ""
            if len(shape) == 2 and a.ndim == 2 and a.shape == want[::-1] and ("W" in name.rsplit(".", 1)[-1]):
                other = "torch" if self.layout == "sheet" else "sheet"
                hint = (f"; it has the {other} layout's shape (torch's Linear.weight is n_k x n_(k-1)): "
                        f"pass layout={other!r} to Recorder")
            raise ValueError(f"{name}: shape {a.shape}, expected {want}{hint}")
        return a

    def _add_rows(self, xname, x, yname, y):
        x = self._array(xname, x, (None, self.layers[0]))
        y = self._array(yname, y, (None, self.layers[-1]))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{xname} has {x.shape[0]} rows, {yname} {y.shape[0]}")
        if x.shape[0] == 0:
            raise ValueError(f"{xname}: no rows")
        self._xs.append(x)
        self._ys.append(y)
        self._rows += x.shape[0]
        return np.arange(self._rows - x.shape[0], self._rows, dtype=np.int64)

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
                raise ValueError(f"{prefix}: biases given for a network recorded without them (biases=None)")
            if len(biases) != depth:
                raise ValueError(f"{prefix}: {len(biases)} bias vectors for {depth} layers")
            for k, b in enumerate(biases, start=1):
                self.tensors[f"{prefix}.{b_name}{k}"] = self._array(f"{prefix}.{b_name}{k}", np.ravel(b),
                                                                    (self.layers[k],))

    def step(self, batch=None, *, x=None, y=None, loss=None, dW=None, db=None, W=None, b=None, state=None,
             lr=None):
        """Records step t (0, 1, ... in call order): the batch (its sample indices into the constructor's
        x and y, or the batch's own rows as x=, y=), and whatever your code computed: the loss E
        before the update, the gradients dE/dW^k, dE/db^k, the weights and biases after the update,
        and the optimizer's state after it as {name: (Ws, bs)} (bs may be None), with PyTorch's names
        (exp_avg, ...); lr: this step's learning rate, when it is not the constructor's. Every array is
        copied at the call. Give the same items at every step (the loss at all or none)."""
        t = self.steps
        if self.saved is not None:
            raise ValueError(f"step: this Recorder was saved to {self.saved} after {t} steps; make a new "
                             "Recorder for a new run (or call rec.reset() to drop the steps recorded)")
        if (batch is None) == (x is None and y is None):
            raise ValueError(f"step {t}: give the batch either as indices (step(idx, ...)) or as its rows "
                             "(step(x=xb, y=yb, ...)), not both")
        if batch is not None:
            idx = np.asarray(batch)
            if idx.dtype == bool:
                raise ValueError(f"batch.{t}: a boolean mask; pass the indices instead, np.flatnonzero(mask)")
            if idx.size and not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"batch.{t}: sample indices must be integers, got {idx.dtype}")
            idx = idx.astype(np.int64).ravel()
            if not self._xs:
                raise ValueError(f"batch.{t}: indices, but the Recorder has no x, y (pass x= and y= to "
                                 "Recorder, or the batch's rows as step(x=xb, y=yb))")
            n = self._xs[0].shape[0]
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
                raise ValueError(f"batch.{t}: indices must lie in 0..{n - 1}")
        else:
            if x is None or y is None:
                raise ValueError(f"step {t}: give both x= and y= (the batch's inputs and targets)")
            idx = None
        if loss is not None:
            if len(self.losses) != t:
                raise ValueError(f"step {t}: a loss, but none at the steps before")
        elif self.losses:
            raise ValueError(f"step {t}: no loss, but the steps before have one")
        if lr is not None:
            if not (np.isfinite(lr) and lr > 0):
                raise ValueError(f"lr: a finite number > 0, got {lr!r} at step {t}")
            if not self.plain_sgd and float(lr) != self.config["lr"]:
                raise ValueError("lr: a step's own lr is checked with plain SGD only (optimizer='sgd', no "
                                 "momentum, weight_decay=0)")
        before = dict(self.tensors)
        try:
            self._params(f"manual.step{t}", dW, db, grads=True)
            self._params(f"manual.step{t}", W, b, grads=False)
            for name, (ws, bs) in (state or {}).items():
                self._params(f"manual.step{t}.state.{name}", ws, bs, grads=False)
            if idx is None:
                idx = self._add_rows(f"x (step {t})", x, f"y (step {t})", y)
        except ValueError:
            self.tensors = before  # a refused step records nothing
            raise
        self.tensors[f"batch.{t}"] = idx
        if loss is not None:
            self.losses.append(float(loss))
        self.lrs.append(self.config["lr"] if lr is None else float(lr))
        self.steps += 1

    def reset(self):
        """Drops every recorded step (and the batches given as x=, y= with them), keeping the data and
        the initial weights: the same Recorder records a new run from step 0."""
        self.tensors = {k: v for k, v in self.tensors.items() if k.startswith("init.")}
        keep = 1 if self._constructor_rows else 0
        self._xs, self._ys = self._xs[:keep], self._ys[:keep]
        self._rows = sum(a.shape[0] for a in self._xs)
        self.losses, self.lrs, self.steps, self.saved = [], [], 0, None

    def save(self, path):
        """Writes the trace (safetensors, with the config as metadata), whole or not at all; returns path."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"save: the folder {folder} does not exist; create it first "
                                    "(os.makedirs) or pass a path in an existing folder")
        if self.steps == 0:
            raise ValueError("save: no step recorded (call rec.step(...) once per training step)")
        tensors = dict(self.tensors)
        tensors["x"] = np.concatenate(self._xs) if len(self._xs) > 1 else self._xs[0]
        tensors["y"] = np.concatenate(self._ys) if len(self._ys) > 1 else self._ys[0]
        if self.losses:
            tensors["manual.loss"] = np.asarray(self.losses, dtype=self.np_dtype)
        if any(lr != self.config["lr"] for lr in self.lrs):
            tensors["lr"] = np.asarray(self.lrs, dtype=np.float64)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            save_file(tensors, tmp, metadata={"config": json.dumps(self.config)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self.saved = path
        return path

    def check(self, out=None, check=None, trace=None):
        """Runs this repository's `check` on the trace (saved first, into `trace` or beside the report,
        when it has not been) and returns a CheckResult: verdict, exit status, first divergence, likely
        cause, report path. In IPython the report's figures are shown inline. out: the report's folder
        (default: a new temporary one); check: the check binary (default target/release/check here)."""
        out = out or tempfile.mkdtemp(prefix="backprop-check-")
        os.makedirs(out, exist_ok=True)
        if self.saved is None:
            self.save(trace or os.path.join(out, "trace.safetensors"))
        binary = check or os.path.join(ROOT, "target", "release", "check")
        if not os.path.exists(binary):
            raise FileNotFoundError(f"check: no binary at {binary}; build it (cargo build --release) or pass "
                                    "check='path/to/check'")
        run = subprocess.run([binary, self.saved, "--out", out, "--quiet"], capture_output=True, text=True)
        result = CheckResult(run.returncode, run.stdout + run.stderr, out)
        result._show()
        return result


class CheckResult:
    """What `check` said: `verdict` ("equivalent", "not equivalent", ... or "refused" for a trace it
    could not check), `code` (its exit status), `first_divergence` (a dict: step, layer, tensor, ...;
    None when there is none), `likely_cause` (a sentence, or None), `report` (report.json's path),
    `out` (the folder of the report and figures), `output` (what it printed)."""

    def __init__(self, code, output, out):
        self.code, self.output, self.out = code, output.strip(), out
        self.report = os.path.join(out, "report.json")
        data = {}
        if code != 2 and os.path.exists(self.report):
            with open(self.report) as f:
                data = json.load(f)
        self.verdict = data.get("verdict", "refused" if code == 2 else "unknown")
        self.first_divergence = data.get("first_divergence")
        self.likely_cause = next((line.split(":", 1)[1].strip() for line in self.output.splitlines()
                                  if line.startswith("likely cause:")), None)

    def __bool__(self):
        return self.code == 0

    def __repr__(self):
        return self.output

    def _show(self):
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:
            return
        if get_ipython() is None or not os.path.isdir(self.out):
            return
        for name in sorted(os.listdir(self.out)):
            if name.endswith(".png"):
                display(Image(filename=os.path.join(self.out, name)))
