"""Full-batch gradient descent, side by side: our core, PyTorch (CPU) and scikit-learn's MLP.

Each peer trains the same network (ReLU hidden layers, one sigmoid output, binary
cross-entropy) from the same initial weights (our ``Network(layer_dims, seed=0)``'s He init,
copied into the PyTorch modules and into scikit-learn's ``coefs_``/``intercepts_``) on the same
float32 data with plain gradient descent (no momentum, no L2, no shuffling, every step on all
samples), so their final costs agree to float32 rounding: the printed costs show that they
compute the same thing.

The machine this runs on may be shared, so the peers are timed interleaved in rounds (core,
torch, sklearn, core, torch, ...), each timing in a fresh child process, and the summary reports
the best and the median iterations/s over the rounds; the ratios are taken from the best-of
values, the least disturbed measurement of each peer. A child's peak memory (the rise of
``ru_maxrss`` during a short first run) is its own; all peers use the same thread count.

Every peer also stamps the time after each iteration, and the summary reports each peer's
fastest stretch of a tenth of its iterations ("steady"). On a virtual machine whose second CPU
is now and then taken by its host, a whole timing rarely escapes such a stall, and the stalls
hit the peers that spend more of their time in two-thread BLAS (ours, PyTorch) harder than the
others; the steady figures compare the peers as they run when both CPUs are theirs.

    flock /tmp/bench.lock .venv/bin/python benchmarks/core_vs_peers.py [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info

ROOT = Path(__file__).resolve().parent.parent
LEARNING_RATE = 0.01
PEERS = ("core", "torch", "sklearn")
# The BLAS-bound limit: the matrix products of one step alone (see run_limit), timed as a peer.
LIMIT = "limit"


@dataclass(frozen=True)
class Workload:
    name: str
    layer_dims: tuple[int, ...]
    n_samples: int
    iterations: int
    quick_iterations: int


WORKLOADS = (
    Workload("recipe", (10, 16, 32, 64, 128, 256, 128, 64, 32, 16, 8, 1), 500, 1000, 100),
    Workload("wide", (784, 256, 128, 1), 20_000, 20, 3),
)


def make_data(workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    """Fixed float32 inputs and a learnable 0/1 target, with no float64 temporaries."""
    rng = np.random.default_rng(0)
    X = np.empty((workload.n_samples, workload.layer_dims[0]), dtype=np.float32)
    # Filled in chunks so that no large temporary raises the peak RSS the peers are measured by.
    for start in range(0, len(X), 1000):
        X[start : start + 1000] = rng.standard_normal(X[start : start + 1000].shape, np.float32)
    w = rng.standard_normal(workload.layer_dims[0], dtype=np.float32)
    y = (X @ w > 0).astype(np.float32)
    return X, y


def initial_parameters(workload: Workload) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Our network's initial weights (n_in, n_out) and biases, which every peer starts from."""
    from core import Network

    net = Network(workload.layer_dims, seed=0)
    return net.weights, net.biases


def blas_threads() -> int:
    return int(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))


Tick = Callable[[], None]


def run_core(workload: Workload, X: np.ndarray, y: np.ndarray, n: int, tick: Tick) -> float:
    from core import Network, TrainConfig, train

    net = Network(workload.layer_dims, seed=0)
    # Only the first and last points are recorded: the peers compute no accuracy either.
    config = TrainConfig(LEARNING_RATE, n, standardize=False, record_every=n)
    result = train(net, X, y, config, on_checkpoint=lambda iteration, capture: tick())
    return float(result.history[-1]["cost"])


def run_torch(workload: Workload, X: np.ndarray, y: np.ndarray, n: int, tick: Tick) -> float:
    import torch

    torch.set_num_threads(blas_threads())
    layers: list[torch.nn.Module] = []
    for W, b in zip(*initial_parameters(workload), strict=True):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            # nn.Linear stores its weight as (n_out, n_in): the transpose of ours.
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y[:, None])
    cost = float("nan")
    for _ in range(n):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        cost = loss.item()  # as our loop does, read the cost every step (divergence guard)
        tick()
    return cost


def run_sklearn(workload: Workload, X: np.ndarray, y: np.ndarray, n: int, tick: Tick) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    weights, biases = initial_parameters(workload)
    given = iter(zip(weights, biases, strict=True))

    class GivenInitMLP(MLPClassifier):  # type: ignore[misc]  # scikit-learn has no stubs
        """MLPClassifier whose first fit starts from our weights instead of its own init.

        ``_init_coef`` is the one hook scikit-learn calls per layer, in order, to draw the
        initial coefficients; training itself is scikit-learn's, untouched.
        """

        def _init_coef(self, fan_in: int, fan_out: int, dtype: Any) -> Any:
            W, b = next(given)
            assert W.shape == (fan_in, fan_out) and W.dtype == dtype
            return W.copy(), b.copy()

        def _update_no_improvement_count(self, *args: Any, **kwargs: Any) -> None:
            # Called once at the end of every iteration of scikit-learn's own loop.
            tick()
            super()._update_no_improvement_count(*args, **kwargs)

    model = GivenInitMLP(
        hidden_layer_sizes=workload.layer_dims[1:-1],
        solver="sgd",
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=len(X),
        alpha=0.0,
        shuffle=False,
        learning_rate_init=LEARNING_RATE,
        max_iter=n,
        tol=0.0,
        n_iter_no_change=n + 1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y.astype(np.int64))
    return float(model.loss_curve_[-1])


_PRODUCTS: dict[str, list[Any]] = {}


def run_limit(workload: Workload, X: np.ndarray, y: np.ndarray, n: int, tick: Tick) -> float:
    """``n`` steps' worth of the step's matrix products alone: the BLAS-bound limit.

    Per layer ``Z = A @ W``, ``dW = A.T @ dZ`` and, after the first, ``dA = dZ @ W.T`` (the
    one-unit output layer's outer product by broadcasting, its fastest form), on C-contiguous
    float32 operands of the plain network's shapes (no bias column), the first layer's input
    being the benchmark's own ``X``, with numpy's BLAS and threads. The operands are built on
    the first (warm-up) call, outside the timed run. Nothing but products: no bias, activation,
    cost or update, so no training loop can be faster.
    """
    from core_step_profile import product_operands  # a sibling script, not a package

    if workload.name not in _PRODUCTS:
        products = product_operands(workload.layer_dims, len(X), np.random.default_rng(1), X)
        _PRODUCTS[workload.name] = [run for _, run in products]
    del y
    for _ in range(n):
        for run in _PRODUCTS[workload.name]:
            run()
        tick()
    return float("nan")


RUNNERS = {"core": run_core, "torch": run_torch, "sklearn": run_sklearn, LIMIT: run_limit}
MODULES = {"core": "core", "torch": "torch", "sklearn": "sklearn.neural_network", LIMIT: "numpy"}
# Our core's speed is NumPy's (and its BLAS's), so its row shows NumPy's version.
DISTRIBUTIONS = {"core": "numpy", "torch": "torch", "sklearn": "scikit-learn", LIMIT: "numpy"}


def child(peer: str, workload: Workload, iterations: int) -> dict[str, float | str]:
    """Time one peer in this (fresh) process and measure its peak memory rise."""
    importlib.import_module(MODULES[peer])
    X, y = make_data(workload)
    run = RUNNERS[peer]
    # The first, short run measures memory (peak RSS rise over the loaded data and libraries)
    # and warms up thread pools and allocators before the timed run.
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stamps: list[float] = []
    run(workload, X, y, 2, lambda: None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    cost = run(workload, X, y, iterations, lambda: stamps.append(time.perf_counter()))
    elapsed = time.perf_counter() - start
    assert len(stamps) == iterations, f"{peer} stamped {len(stamps)} of {iterations} iterations"
    return {
        "it_per_s": iterations / elapsed,
        "steady_it_per_s": steady_speed([start, *stamps]),
        "peak_mib": (peak - rss_before) / 1024,
        "final_cost": cost,
        "threads": blas_threads(),
        "version": importlib.metadata.version(DISTRIBUTIONS[peer]),
    }


def steady_speed(stamps: list[float]) -> float:
    """Iterations/s over the fastest stretch of a tenth of the iterations (at least two, at
    most all), given the start time followed by the time after each iteration."""
    iterations = len(stamps) - 1
    window = min(iterations, max(2, iterations // 10))
    return window / min(b - a for a, b in zip(stamps, stamps[window:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, for a smoke run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--workload", choices=[w.name for w in WORKLOADS], action="append")
    parser.add_argument(
        "--threads",
        type=int,
        help="BLAS/OpenMP threads for every peer (sets OPENBLAS_NUM_THREADS and OMP_NUM_THREADS "
        "for the children; default: numpy's own choice)",
    )
    parser.add_argument("--child", nargs=3, metavar=("PEER", "WORKLOAD", "ITERATIONS"))
    args = parser.parse_args()
    by_name = {w.name: w for w in WORKLOADS}
    if args.child:
        peer, name, iterations = args.child
        print(json.dumps(child(peer, by_name[name], int(iterations))))
        return

    if args.threads is not None:
        # Set before any child starts; the children read it when their BLAS loads.
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # so that the header below reports it
    # Linux keeps ru_maxrss across fork and exec, so this parent stays small (no torch or
    # scikit-learn import here) lest its peak be counted in the children's.
    print(f"numpy {np.__version__}; peer versions are printed with their rows")
    print(f"BLAS threads (all peers): {blas_threads()}; cpus: {os.cpu_count()}")
    for pool in threadpool_info():  # which kernels run, as threadpoolctl reports them
        if pool["user_api"] == "blas":
            print(
                f"numpy's BLAS: {pool['internal_api']} {pool['version']}, "
                f"kernel {pool.get('architecture')}, {pool.get('threading_layer')}"
            )
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        print(f"{var}={os.environ.get(var, '(unset)')}")
    workloads = [by_name[name] for name in args.workload] if args.workload else WORKLOADS
    for workload in workloads:
        iterations = workload.quick_iterations if args.quick else workload.iterations
        print(
            f"\n{workload.name}: dims {workload.layer_dims}, {workload.n_samples} samples, "
            f"{iterations} iterations per timing, {args.rounds} interleaved rounds"
        )
        runs: dict[str, list[dict[str, Any]]] = {peer: [] for peer in (*PEERS, LIMIT)}
        for round_ in range(1, args.rounds + 1):
            for peer in (*PEERS, LIMIT):
                command = [sys.executable, __file__, "--child", peer, workload.name]
                command.append(str(iterations))
                output = subprocess.run(command, check=True, capture_output=True, text=True)
                runs[peer].append(json.loads(output.stdout))
            speeds = "  ".join(f"{p} {runs[p][-1]['it_per_s']:7.1f}" for p in (*PEERS, LIMIT))
            print(f"  round {round_}: it/s  {speeds}", flush=True)
        print(
            f"  {'peer':8} {'best it/s':>10} {'median':>8} {'peak MiB':>9} "
            f"{'final cost':>12}  version"
        )
        best = {}
        for peer in PEERS:
            speeds_ = [r["it_per_s"] for r in runs[peer]]
            best[peer] = max(speeds_)
            first = runs[peer][0]
            print(
                f"  {peer:8} {best[peer]:10.1f} {statistics.median(speeds_):8.1f} "
                f"{max(r['peak_mib'] for r in runs[peer]):9.1f} {first['final_cost']:12.6f}  "
                f"{first['version']}"
            )
        print(
            f"  ratios (best-of): ours/torch {best['core'] / best['torch']:.2f}x, "
            f"ours/sklearn {best['core'] / best['sklearn']:.2f}x"
        )
        steady = {peer: max(r["steady_it_per_s"] for r in runs[peer]) for peer in (*PEERS, LIMIT)}
        print(
            "  steady (fastest tenth of the iterations, best over the rounds): it/s "
            + "  ".join(f"{p} {steady[p]:.1f}" for p in (*PEERS, LIMIT))
        )
        print(
            f"  ratios (steady): ours/torch {steady['core'] / steady['torch']:.2f}x, "
            f"ours/sklearn {steady['core'] / steady['sklearn']:.2f}x, "
            f"fraction of the limit {steady['core'] / steady[LIMIT]:.2f}"
        )
        limits = [r["it_per_s"] for r in runs[LIMIT]]
        fractions = [c["it_per_s"] / lim for c, lim in zip(runs["core"], limits, strict=True)]
        print(
            f"  BLAS-bound limit (the step's products alone, same shapes, float32, "
            f"{runs[LIMIT][0]['threads']} threads): best {1e3 / max(limits):.1f} ms/step "
            f"({max(limits):.1f} it/s), median {1e3 / statistics.median(limits):.1f} ms/step"
        )
        print(
            f"  fraction of the limit reached by the core (its it/s over the limit's): "
            f"best-of {best['core'] / max(limits):.2f}, per round "
            f"{min(fractions):.2f}-{max(fractions):.2f} (median {statistics.median(fractions):.2f})"
        )


if __name__ == "__main__":
    main()
