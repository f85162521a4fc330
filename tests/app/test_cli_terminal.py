"""The client commands in an 80-column pseudo-terminal (see tests/support/terminal.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from terminal import COLUMNS, run_in_terminal, screen_of, written_lines

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer.csv"


def test_train_watch_fits_80_columns_and_shows_validation(shared_client: httpx.Client) -> None:
    url = str(shared_client.base_url)
    status, output = run_in_terminal(
        "train", str(EXAMPLE), "--label-column", "diagnosis", "--iterations", "400",
        "--validation-fraction", "0.2", "--watch", "--url", url,
    )  # fmt: skip
    assert status == 0, output
    widest = max(written_lines(output), key=len)
    assert len(widest) <= COLUMNS, widest
    screen = screen_of(output)
    text = "\n".join(screen)
    # rich redrew the progress in place: one final bar, no stale half-lines left behind.
    bars = [line for line in screen if "━" in line]
    assert len(bars) == 1 and bars[0].startswith("succeeded") and "400/400" in bars[0]
    assert "it/s" in bars[0] and "eta" in bars[0]
    metrics = screen[screen.index(bars[0]) + 1]
    assert metrics.startswith("train cost") and "| val cost" in metrics
    assert "cost (log scale): ▚ train  • validation" in text
    model_id = [line for line in screen if line][-1]
    assert shared_client.get(f"/models/{model_id}").status_code == 200


def test_listings_fit_80_columns(shared_client: httpx.Client) -> None:
    url = str(shared_client.base_url)
    shared_client.post(
        "/datasets",
        json={"name": "a-dataset-name-much-longer-than-eighty-columns-" * 3,
              "features": [[0.0], [1.0]], "labels": [0, 1]},
    )  # fmt: skip
    for command in ("jobs", "models", "datasets"):
        status, output = run_in_terminal(command, "--url", url)
        assert status == 0, output
        assert max(len(line) for line in written_lines(output)) <= COLUMNS, output
