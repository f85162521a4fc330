"""The sweep methods of app.client.Client: start a hyperparameter search, read its leaderboard,
wait for it to end, cancel it.

    with Client() as api:
        sweep = api.create_sweep(
            dataset_id,
            hyperparameters={"n_iterations": 500, "validation_fraction": 0.2},
            grid={"learning_rate": [0.001, 0.01], "hidden_layers": [[16], [16, 8]]},
        )
        board = api.wait_sweep(sweep["id"])      # trials best first, and "best"
        print(board["best"]["model_id"])
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from app.job_status import ACTIVE_STATES

JSON = dict[str, Any]
# SweepStatus's final states, spelled out here: the client does not import the database layer.
SWEEP_ENDED = frozenset({"succeeded", "failed", "cancelled"})


class SweepMethods:
    """Mixed into Client, whose transport they use."""

    if TYPE_CHECKING:

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def create_sweep(
        self,
        dataset_id: str,
        *,
        grid: dict[str, list[Any]] | None = None,
        random: JSON | None = None,
        hyperparameters: JSON | None = None,
        name: str | None = None,
        metric: str | None = None,
        max_parallel: int | None = None,
        promote: str | None = None,
    ) -> JSON:
        """Start a search, one of `grid` ({param: [values]}: every combination) or `random`
        ({"n_trials": N, "space": {param: {"low", "high", "log"} or [choices]}, "seed": S});
        every trial is `hyperparameters` with its own values on top. Unset options take the
        server's defaults; the answer carries the sweep's id (also as sweep_id)."""
        body: JSON = {"dataset_id": dataset_id, "hyperparameters": hyperparameters or {}}
        optional: JSON = {
            "grid": grid,
            "random": random,
            "name": name,
            "metric": metric,
            "max_parallel": max_parallel,
            "promote": promote,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        accepted: JSON = self._json("POST", "/sweeps", json=body)
        return accepted

    def list_sweeps(self, *, limit: int = 50, offset: int = 0) -> list[JSON]:
        page: JSON = self._json("GET", "/sweeps", params={"limit": limit, "offset": offset})
        return list(page["items"])

    def get_sweep(self, sweep_id: str) -> JSON:
        """The sweep with its trials in leaderboard order (ranked ones best first) and `best`."""
        sweep: JSON = self._json("GET", f"/sweeps/{sweep_id}")
        return sweep

    def cancel_sweep(self, sweep_id: str) -> JSON:
        """Cancel the queued trials, ask the running ones to stop, start no more."""
        sweep: JSON = self._json("POST", f"/sweeps/{sweep_id}/cancel")
        return sweep

    def wait_sweep(
        self, sweep_id: str, *, timeout: float | None = None, poll_seconds: float = 0.5
    ) -> JSON:
        """The sweep once it has ended and none of its trials is still stopping (a cancelled
        sweep's running trials take a moment), so its leaderboard is final."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.get_sweep(sweep_id)
            stopping = any(trial["status"] in ACTIVE_STATES for trial in sweep["trials"])
            if sweep["status"] in SWEEP_ENDED and not stopping:
                return sweep
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} is still {sweep['status']} after {timeout} s")
            time.sleep(poll_seconds)
