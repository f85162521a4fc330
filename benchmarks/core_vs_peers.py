"""Full-batch gradient descent, side by side: our core, PyTorch (CPU) and scikit-learn's MLP.

Each peer trains the same architecture (ReLU hidden layers, one sigmoid output, binary
cross-entropy) on the same float32 data with plain gradient descent (no momentum, no L2, no
shuffling, every step on all samples). Every peer runs in a fresh child process, so its peak
memory (the rise of ``ru_maxrss`` during training) is its own; all use the same thread count.

    .venv/bin/python benchmarks/core_vs_peers.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

ROOT = Path(__file__).resolve().parent.parent
LEARNING_RATE = 0.01
PEERS = ("core", "torch", "sklearn")


@dataclass(frozen=True)
class Workload:
    name: str
    layer_dims: tuple[int, ...]
    n_samples: int
    iterations: int
    quick_iterations: int


WORKLOADS = (
    Workload("recipe", (10, 16, 32, 64, 128, 256, 128, 64, 32, 16, 8, 1), 500, 2000, 200),
    Workload("wide", (784, 256, 128, 1), 20_000, 40, 6),
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


def blas_threads() -> int:
    return max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")


def run_core(workload: Workload, X: np.ndarray, y: np.ndarray, n: int) -> float:
    from core import Network, TrainConfig, train

    net = Network(workload.layer_dims, seed=0)
    # Only the first and last points are recorded: the peers compute no accuracy either.
    config = TrainConfig(LEARNING_RATE, n, standardize=False, record_every=n)
    return train(net, X, y, config).history[-1]["cost"]


def run_torch(workload: Workload, X: np.ndarray, y: np.ndarray, n: int) -> float:
    import torch

    torch.set_num_threads(blas_threads())
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    dims = workload.layer_dims
    for n_in, n_out in pairwise(dims):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y[:, None])
    for _ in range(n):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        cost = loss.item()  # as our loop does, read the cost every step (divergence guard)
    return cost


def run_sklearn(workload: Workload, X: np.ndarray, y: np.ndarray, n: int) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
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


RUNNERS = {"core": run_core, "torch": run_torch, "sklearn": run_sklearn}
MODULES = {"core": "core", "torch": "torch", "sklearn": "sklearn.neural_network"}
# Our core's speed is NumPy's (and its BLAS's), so its row shows NumPy's version.
DISTRIBUTIONS = {"core": "numpy", "torch": "torch", "sklearn": "scikit-learn"}


def child(peer: str, workload: Workload, iterations: int) -> dict[str, float | str]:
    """Time one peer in this (fresh) process and measure its peak memory rise."""
    importlib.import_module(MODULES[peer])
    X, y = make_data(workload)
    run = RUNNERS[peer]
    # The first, short run measures memory (peak RSS rise over the loaded data and libraries)
    # and warms up thread pools and allocators before the timed run.
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(workload, X, y, 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    cost = run(workload, X, y, iterations)
    elapsed = time.perf_counter() - start
    return {
        "it_per_s": iterations / elapsed,
        "peak_mib": (peak - rss_before) / 1024,
        "final_cost": cost,
        "threads": blas_threads(),
        "version": importlib.metadata.version(DISTRIBUTIONS[peer]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, for a smoke run")
    parser.add_argument("--child", nargs=3, metavar=("PEER", "WORKLOAD", "ITERATIONS"))
    args = parser.parse_args()
    by_name = {w.name: w for w in WORKLOADS}
    if args.child:
        peer, name, iterations = args.child
        print(json.dumps(child(peer, by_name[name], int(iterations))))
        return

    # Linux keeps ru_maxrss across fork and exec, so this parent stays small (no torch or
    # scikit-learn import here) lest its peak be counted in the children's.
    print(f"numpy {np.__version__}; peer versions are printed with their rows")
    print(f"BLAS threads (all peers): {blas_threads()}; cpus: {os.cpu_count()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        print(f"{var}={os.environ.get(var, '(unset)')}")
    header = f"{'workload':8} {'peer':8} {'it/s':>10} {'peak MiB':>9} {'final cost':>11}  version"
    print(header)
    for workload in WORKLOADS:
        iterations = workload.quick_iterations if args.quick else workload.iterations
        results = {}
        for peer in PEERS:
            command = [sys.executable, __file__, "--child", peer, workload.name, str(iterations)]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
            results[peer] = json.loads(output.stdout)
            r = results[peer]
            print(
                f"{workload.name:8} {peer:8} {r['it_per_s']:10.1f} {r['peak_mib']:9.1f} "
                f"{r['final_cost']:11.5f}  {r['version']}"
            )
        ours = results["core"]["it_per_s"]
        print(
            f"{workload.name:8} ratios: ours/torch {ours / results['torch']['it_per_s']:.2f}x, "
            f"ours/sklearn {ours / results['sklearn']['it_per_s']:.2f}x "
            f"({iterations} iterations, {workload.n_samples} samples, dims {workload.layer_dims})"
        )


if __name__ == "__main__":
    main()
