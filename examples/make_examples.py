"""Regenerate the example datasets from the copies bundled with scikit-learn (no download).

    python examples/make_examples.py

breast_cancer.csv: 569 tumours, 30 numeric features, label column `diagnosis` (malignant/benign).
digits.npz: 1797 8x8 grey-level images of handwritten digits as X (n, 8, 8) and their digit y.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits

HERE = Path(__file__).resolve().parent


def write_breast_cancer(path: Path) -> None:
    data = load_breast_cancer()
    labels = data.target_names[data.target]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*data.feature_names, "diagnosis"])
        for row, label in zip(data.data, labels, strict=True):
            writer.writerow([*(f"{value:.6g}" for value in row), label])


def write_digits(path: Path) -> None:
    digits = load_digits()
    X = digits.images.astype(np.float32)
    y = digits.target.astype(np.int64)
    np.savez_compressed(path, X=X, y=y)


if __name__ == "__main__":
    write_breast_cancer(HERE / "breast_cancer.csv")
    write_digits(HERE / "digits.npz")
    print(f"wrote {HERE / 'breast_cancer.csv'} and {HERE / 'digits.npz'}")
