"""Per-operation profile of one training step of the core, and the step's products alone.

Every NumPy call the step makes (``core.backprop``, ``core.activations``, ``core.outputs``) is
timed through a thin proxy standing in for those modules' ``np``, keyed by the function and the
shapes it works on; the same products are then timed alone, on fresh contiguous operands of
the same shapes and dtype, with the same BLAS threads. The difference between the two columns
is what running inside the step costs a product (layouts, cache state, thread wake-ups).

    .venv/bin/python benchmarks/core_step_profile.py [--workload wide] [--steps 10] [--rounds 3]

The proxy adds about a microsecond per call: fine for the wide workload, where calls take
milliseconds; on the recipe workload use the call count, not the per-call times.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.activations
import core.backprop
import core.outputs
from core import Network
from core.backprop import Workspace
from core.preprocessing import encode_targets

WORKLOADS = {
    "recipe": ((10, 16, 32, 64, 128, 256, 128, 64, 32, 16, 8, 1), 500),
    "wide": ((784, 256, 128, 1), 20_000),
}


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        layout = "" if value.flags.c_contiguous else ("F" if value.flags.f_contiguous else "s")
        return "x".join(map(str, value.shape)) + layout
    return type(value).__name__


class TimedNumpy:
    """Stands in for ``numpy`` inside the core's modules and times every call through it."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(np, name)
        if not callable(target) or isinstance(target, type):
            return target

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = target(*args, **kwargs)
            elapsed = time.perf_counter() - start
            shapes = ", ".join(_describe(a) for a in args if isinstance(a, np.ndarray))
            out = kwargs.get("out")
            if isinstance(out, np.ndarray):
                shapes += " -> " + _describe(out)
            self.times[f"{name}({shapes})"].append(elapsed)
            self.calls += 1
            return result

        return timed


def _problem(workload: str) -> tuple[Network, np.ndarray, np.ndarray]:
    dims, m = WORKLOADS[workload]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, dims[0]), dtype=np.float32)
    y = (X @ rng.standard_normal(dims[0], dtype=np.float32) > 0).astype(np.float32)
    Y, _ = encode_targets(y, "sigmoid", 1, np.dtype(np.float32))
    return Network(dims, seed=0), X, Y


def profile_step(workload: str, steps: int) -> tuple[dict[str, float], int, float]:
    """Per-call-site minimum time over ``steps`` steps, NumPy calls per step, best step time."""
    net, X, Y = _problem(workload)
    workspace = Workspace(net, len(X))
    for _ in range(2):
        workspace.step(X, Y, 0.0, 0.01)
    best = min(_time(lambda: workspace.step(X, Y, 0.0, 0.01)) for _ in range(steps))
    proxy = TimedNumpy()
    modules = (core.backprop, core.activations, core.outputs)
    originals = [m.np for m in modules]
    try:
        for module in modules:
            module.np = proxy  # type: ignore[assignment]
        for _ in range(steps):
            workspace.step(X, Y, 0.0, 0.01)
    finally:
        for module, original in zip(modules, originals, strict=True):
            module.np = original  # type: ignore[assignment]
    per_site = {}
    for key, values in proxy.times.items():
        per_step = len(values) // steps
        # A call site used several times per step: the minimum of each step's sum.
        sums = [sum(values[i * per_step : (i + 1) * per_step]) for i in range(steps)]
        per_site[key] = min(sums)
    return per_site, proxy.calls // steps, best


def _time(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def product_operands(
    layer_dims: tuple[int, ...], m: int, rng: np.random.Generator, X: np.ndarray | None = None
) -> list[tuple[str, Callable[[], object]]]:
    """The products one step computes, on fresh C-contiguous float32 operands of its shapes.

    Per layer: ``Z = A @ W``, ``dW = A.T @ dZ`` and (after the first) ``dA = dZ @ W.T``; an
    outer product (``n_out == 1``) as broadcasting, its fastest form, as the core does.
    Biases are left out: the limit is the products of the plain network. ``X``, if given, is
    the first layer's input.
    """
    products: list[tuple[str, Callable[[], object]]] = []
    for layer, (n_in, n_out) in enumerate(itertools.pairwise(layer_dims)):
        A = X if layer == 0 and X is not None else rng.standard_normal((m, n_in), np.float32)
        W = rng.standard_normal((n_in, n_out), dtype=np.float32)
        Z = np.empty((m, n_out), dtype=np.float32)
        dZ = rng.standard_normal((m, n_out), dtype=np.float32)
        dW = np.empty((n_in, n_out), dtype=np.float32)
        dA = np.empty((m, n_in), dtype=np.float32)
        shape = f"{m}x{n_in}x{n_out}"
        products.append((f"L{layer} Z = A @ W ({shape})", _bind(np.matmul, A, W, Z)))
        products.append((f"L{layer} dW = A.T @ dZ ({shape})", _bind(np.matmul, A.T, dZ, dW)))
        if layer == 0:
            continue
        if n_out == 1:
            products.append((f"L{layer} dA = dZ * w (outer)", _bind(np.multiply, dZ, W.T, dA)))
        else:
            products.append((f"L{layer} dA = dZ @ W.T ({shape})", _bind(np.matmul, dZ, W.T, dA)))
    return products


def _bind(function: Callable[..., object], a: Any, b: Any, out: Any) -> Callable[[], object]:
    return lambda: function(a, b, out=out)


def blas_limit(layer_dims: tuple[int, ...], m: int, repeats: int) -> tuple[float, dict[str, float]]:
    """Seconds per step of the step's products alone: each product's best of ``repeats``
    back-to-back sequences of all of them (so each runs after the others, as in a step)."""
    products = product_operands(layer_dims, m, np.random.default_rng(1))
    for _, run in products:
        run()
    best: dict[str, float] = {}
    totals = []
    for _ in range(repeats):
        total = 0.0
        for name, run in products:
            elapsed = _time(run)
            best[name] = min(best.get(name, elapsed), elapsed)
            total += elapsed
        totals.append(total)
    return min(totals), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="wide")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dims, m = WORKLOADS[args.workload]
    limits, steps = [], []
    sites: dict[str, list[float]] = defaultdict(list)
    alone: dict[str, list[float]] = defaultdict(list)
    calls = 0
    for _ in range(args.rounds):  # interleaved: step profile, products alone, ...
        per_site, calls, best_step = profile_step(args.workload, args.steps)
        steps.append(best_step)
        for key, value in per_site.items():
            sites[key].append(value)
        limit, per_product = blas_limit(dims, m, args.steps)
        limits.append(limit)
        for key, value in per_product.items():
            alone[key].append(value)
    print(f"{args.workload}: dims {dims}, m = {m}; {calls} NumPy calls per step")
    print(f"step (no proxy), best per round, ms: {', '.join(f'{s * 1e3:.1f}' for s in steps)}")
    print(f"products alone, best per round, ms: {', '.join(f'{s * 1e3:.1f}' for s in limits)}")
    print(f"fraction of the limit (best/best): {min(limits) / min(steps):.3f}")
    print("\ninside the step (min over steps and rounds), ms per step:")
    total = 0.0
    for key, values in sorted(sites.items(), key=lambda kv: -min(kv[1])):
        total += min(values)
        print(f"  {min(values) * 1e3:8.3f}  {statistics.median(values) * 1e3:8.3f}  {key}")
    print(f"  {total * 1e3:8.3f}  sum of call sites")
    print("\nproducts alone (min over repeats and rounds), ms:")
    for key, values in alone.items():
        print(f"  {min(values) * 1e3:8.3f}  {key}")


if __name__ == "__main__":
    main()
