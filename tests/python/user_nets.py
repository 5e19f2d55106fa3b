"""Small training runs written in numpy the way public code writes them, recorded with
python/backprop_trace.py: the tests (tests/conventions.rs) check their traces with `check`.

    user_nets.py SCENARIO OUT_TRACE [--mistake]

Scenarios (each a convention, and with --mistake a planted bug):
  nielsen   sigmoid everywhere, quadratic cost, (eta/m) sum grad with a short last minibatch, in-place
            updates, batches drawn as (x, y) pairs: step(x=, y=, lr=eta/m). Mistake: sigma'(a) where
            sigma'(z) belongs, in the hidden layer (layer 1).
  mean      E = 1/(2m) sum |y_hat - y|^2 and its gradient (reduction="mean"), tanh, biases, a short last
            batch, W -= lr * dW. Mistake: dW2 left a sum (the forgotten /m, layer 2).
  schedule  half-sse summed, lr_t = lr0 / (1 + t/4) given per step. Mistake: the recorded lr is the
            previous step's (the update at step 1 disagrees).
  l2        CS231n's TwoLayerNet: ReLU, softmax cross-entropy averaged over the batch, 0.5*reg*sum(W*W)
            on the weights, W += -lr * dW. Mistake: the penalty's gradient added to the biases too.
  square    a 4-4-4 tanh net in torch's layout (x @ W.T + b), recorded with layout="torch".
  slips     the recorder's refusals, one line each (prints them).
  selfcheck OUT_DIR: schedule's run checked by Recorder.check() (the binary: $BACKPROP_CHECK); prints
            the result's fields.

--grads-only (nielsen) records the gradients alone: check moves each step's weights by them.
--slip=NAME records a right run mis-described, as a newcomer would: reduction (mean's run recorded
with the default sum), activation (nielsen's sigmoid output recorded as identity), lr (nielsen with
the constructor's lr=eta and no per-step lr), layout (square's weights without layout="torch").
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "python"))
from backprop_trace import Recorder  # noqa: E402

SLIP = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--slip=")), None)
GRADS_ONLY = "--grads-only" in sys.argv  # nielsen: the gradients alone, no updated weights


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def nielsen(path, mistake):
    rng = np.random.default_rng(3)
    sizes, eta, m = [3, 5, 2], 3.0, 8
    data = [(rng.normal(size=(3, 1)), rng.uniform(0, 1, size=(2, 1))) for _ in range(60)]
    weights = [rng.normal(size=(y, x)) for x, y in zip(sizes[:-1], sizes[1:])]  # Nielsen's: n_k x n_(k-1)
    biases = [rng.normal(size=(y, 1)) for y in sizes[1:]]
    acts = ["sigmoid", "identity"] if SLIP == "activation" else ["sigmoid", "sigmoid"]
    rec = Recorder(sizes, acts, weights=weights, biases=biases, lr=eta, layout="torch")
    for epoch in range(2):
        rng.shuffle(data)
        for k in range(0, len(data), m):
            batch = data[k:k + m]                                   # the last one has 4 samples
            nabla_b = [np.zeros(b.shape) for b in biases]
            nabla_w = [np.zeros(w.shape) for w in weights]
            for x, y in batch:
                activation, activations, zs = x, [x], []
                for b, w in zip(biases, weights):
                    z = w @ activation + b
                    zs.append(z)
                    activation = sigmoid(z)
                    activations.append(activation)
                delta = (activations[-1] - y) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
                nabla_b[-1] += delta
                nabla_w[-1] += delta @ activations[-2].T
                z = zs[-2]
                sp = sigmoid(activations[-2]) * (1 - sigmoid(activations[-2])) if mistake else \
                    sigmoid(z) * (1 - sigmoid(z))
                delta = (weights[-1].T @ delta) * sp
                nabla_b[-2] += delta
                nabla_w[-2] += delta @ activations[-3].T
            for w, nw in zip(weights, nabla_w):
                w -= (eta / len(batch)) * nw                        # in place
            for b, nb in zip(biases, nabla_b):
                b -= (eta / len(batch)) * nb
            rec.step(x=np.hstack([x for x, _ in batch]).T, y=np.hstack([y for _, y in batch]).T,
                     dW=nabla_w, db=nabla_b, W=None if GRADS_ONLY else weights, b=None if GRADS_ONLY else biases,
                     lr=None if SLIP == "lr" else eta / len(batch))
    rec.save(path)


def mean(path, mistake):
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(60, 4)), rng.normal(size=(60, 2))
    W = [rng.normal(size=(4, 6)) * 0.5, rng.normal(size=(6, 2)) * 0.5]
    b = [np.zeros(6), np.zeros(2)]
    lr, m = 0.1, 8
    rec = Recorder([4, 6, 2], ["tanh", "identity"], X, Y, W, b, loss="half-sse",
                   reduction="sum" if SLIP == "reduction" else "mean", lr=lr)
    for epoch in range(2):
        order = rng.permutation(len(X))
        for k in range(0, len(X), m):
            idx = order[k:k + m]
            x, y = X[idx], Y[idx]
            n = len(idx)
            h = np.tanh(x @ W[0] + b[0])
            out = h @ W[1] + b[1]
            E = 0.5 * np.sum((out - y) ** 2) / n
            d2 = (out - y) / n
            dW2 = h.T @ d2 * (n if mistake else 1)
            d1 = (d2 @ W[1].T) * (1 - h ** 2)
            dW = [x.T @ d1, dW2]
            db = [d1.sum(0), d2.sum(0)]
            for p, g in zip(W + b, dW + db):
                p -= lr * g
            rec.step(idx, loss=E, dW=dW, db=db, W=W, b=b)
    rec.save(path)


def schedule(path, mistake):
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    W = [rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(4, 1)) * 0.5]
    lr0 = 0.02
    rec = Recorder([3, 4, 1], ["tanh", "identity"], X, Y, W, None, lr=lr0)
    for t in range(12):
        lr = lr0 / (1 + t / 4)
        idx = rng.choice(len(X), size=10, replace=False)
        h = np.tanh(X[idx] @ W[0])
        out = h @ W[1]
        d2 = out - Y[idx]
        dW = [X[idx].T @ ((d2 @ W[1].T) * (1 - h ** 2)), h.T @ d2]
        W = [w - lr * g for w, g in zip(W, dW)]
        rec.step(idx, loss=0.5 * np.sum(d2 ** 2), dW=dW, W=W, lr=lr0 / (1 + max(t - 1, 0) / 4) if mistake else lr)
    if path is None:
        return rec
    rec.save(path)


def selfcheck(folder, mistake):
    rec = schedule(None, mistake)
    result = rec.check(out=folder, check=os.environ["BACKPROP_CHECK"])
    d = result.first_divergence
    print(f"verdict={result.verdict} code={result.code} ok={bool(result)} "
          f"report={os.path.exists(result.report)} saved={os.path.exists(rec.saved)} "
          f"divergence={None if d is None else (d['step'], d['layer'], d['tensor'])}")


def l2(path, mistake):
    rng = np.random.default_rng(6)
    N, D, H, C = 50, 4, 7, 3
    X = rng.normal(size=(N, D)).astype(np.float32)
    labels = rng.integers(0, C, size=N)
    Y = np.eye(C, dtype=np.float32)[labels]
    params = {"W1": 0.5 * rng.normal(size=(D, H)).astype(np.float32), "b1": 0.1 * rng.normal(size=H).astype(np.float32),
              "W2": 0.5 * rng.normal(size=(H, C)).astype(np.float32), "b2": 0.1 * rng.normal(size=C).astype(np.float32)}
    reg, lr = 0.05, 0.1
    rec = Recorder([D, H, C], ["relu", "identity"], X, Y, [params["W1"], params["W2"]], [params["b1"], params["b2"]],
                   loss="cross-entropy", l2=reg, lr=lr)
    for it in range(10):
        idx = rng.choice(N, 16, replace=True)
        x, y = X[idx], labels[idx]
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        hidden = np.maximum(0, x @ W1 + b1)
        scores = hidden @ W2 + b2
        scores = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(len(idx)), y]).mean() + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        dscores = probs.copy()
        dscores[np.arange(len(idx)), y] -= 1
        dscores /= len(idx)
        grads = {"W2": hidden.T @ dscores + reg * W2, "b2": dscores.sum(0)}
        dhidden = dscores @ W2.T
        dhidden[hidden <= 0] = 0
        grads["W1"] = x.T @ dhidden + reg * W1
        grads["b1"] = dhidden.sum(0)
        if mistake:
            grads["b1"] = grads["b1"] + reg * b1
            grads["b2"] = grads["b2"] + reg * b2
        for name in params:
            params[name] += -lr * grads[name]
        rec.step(idx, loss=loss, dW=[grads["W1"], grads["W2"]], db=[grads["b1"], grads["b2"]],
                 W=[params["W1"], params["W2"]], b=[params["b1"], params["b2"]])
    rec.save(path)


def square(path, mistake):
    rng = np.random.default_rng(8)
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    W = [rng.normal(size=(4, 4)) * 0.5 for _ in range(2)]   # torch's Linear.weight: out x in
    b = [rng.normal(size=4) * 0.1 for _ in range(2)]
    lr = 0.05
    rec = Recorder([4, 4, 4], ["tanh", "identity"], X, Y, W, b, lr=lr,
                   layout="sheet" if SLIP == "layout" else "torch")
    for t in range(5):
        idx = rng.choice(len(X), size=6, replace=False)
        x, y = X[idx], Y[idx]
        h = np.tanh(x @ W[0].T + b[0])
        out = h @ W[1].T + b[1]
        d2 = out - y
        d1 = (d2 @ W[1]) * ((1 - h ** 2) if not mistake else 1)
        dW, db = [d1.T @ x, d2.T @ h], [d1.sum(0), d2.sum(0)]
        for p, g in zip(W + b, dW + db):
            p -= lr * g
        rec.step(idx, loss=0.5 * np.sum(d2 ** 2), dW=dW, db=db, W=W, b=b)
    rec.save(path)


def slips(folder, _):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    W = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
    ok = lambda: Recorder([3, 4, 2], ["tanh", "identity"], x, y, W, lr=0.1)
    saved = ok()
    saved.step([0, 1], W=W)
    saved.save(os.path.join(folder, "saved.safetensors"))
    cases = {
        "one activation name": lambda: Recorder([3, 4, 2], "tanh", x, y, W, lr=0.1),
        "torch layout": lambda: Recorder([3, 4, 2], ["tanh", "identity"], x, y, [w.T for w in W], lr=0.1),
        "boolean mask": lambda: ok().step(np.arange(10) < 4, W=W),
        "reused recorder": lambda: saved.step([0, 1], W=W),
        "missing folder": lambda: (lambda r: (r.step([0], W=W), r.save(os.path.join(folder, "nope", "t.st"))))(ok()),
    }
    for name, case in cases.items():
        try:
            case()
            print(f"{name}: ACCEPTED")
        except (ValueError, FileNotFoundError) as e:
            print(f"{name}: {type(e).__name__}: {e}")
    assert not os.path.exists(os.path.join(folder, "nope"))


if __name__ == "__main__":
    globals()[sys.argv[1]](sys.argv[2], "--mistake" in sys.argv[3:])
