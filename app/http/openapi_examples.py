"""Per-operation facts for the OpenAPI document: the errors each route answers, and examples.

Keyed by (METHOD, path template). The error lists follow the code each route calls (401 is
added by app/http/openapi.py to every route that takes an API key, 415 to every POST and PUT);
an operation missing here keeps the errors its router declares.
"""

from __future__ import annotations

from typing import Any

Key = tuple[str, str]

DATASET_ID = "5f0c7d2ab6a94c1e9e0f3d8b7a6c5e4d"
JOB_ID = "0b9f4e2c7d1a4f6e8c3b5a7d9e1f2c4b"
MODEL_ID = "c41d8e7f2a6b4c9d8e1f0a3b5c7d9e2f"
CREATED = "2026-11-27T09:30:00Z"
ROW = [17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871]
ROW += [1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193]
ROW += [25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189]

# Routes that resolve the caller by calling get_caller themselves rather than through Depends
# (POST /predict's fast path), so the document cannot see that they take a key.
AUTHENTICATED_BY_HAND: frozenset[Key] = frozenset({("POST", "/predict")})

UNPARSEABLE = "A body that is not JSON at all"
ERRORS: dict[Key, dict[int, str]] = {
    ("POST", "/datasets"): {
        400: "A multipart body that cannot be parsed",
        409: "The Idempotency-Key was used before with a different request",
        413: "The body, or rows x features of the dataset, beyond the server's limits",
        415: "A body that is neither JSON nor multipart/form-data, or a compressed one",
        422: "An unreadable file, a field sent wrongly, or invalid values",
    },
    ("GET", "/datasets"): {422: "limit or offset out of range"},
    ("GET", "/datasets/{dataset_id}"): {404: "No such dataset for this tenant"},
    ("DELETE", "/datasets/{dataset_id}"): {
        404: "No such dataset for this tenant",
        409: "A queued or running job, or a running sweep, uses the dataset",
    },
    ("POST", "/train"): {
        400: UNPARSEABLE,
        404: "No such dataset for this tenant",
        409: "The Idempotency-Key was used before with a different request",
        413: "The body, or an inline dataset, beyond the server's limits",
        422: "Invalid hyperparameters, or beyond the server's training limits",
        429: "Too many queued or running jobs for this tenant; see Retry-After",
        503: "The job queue is unreachable (Celery executor); see Retry-After",
    },
    ("GET", "/jobs"): {422: "An unknown status, or limit/offset out of range"},
    ("GET", "/jobs/{job_id}"): {404: "No such job for this tenant", 422: "max_points out of range"},
    ("GET", "/jobs/{job_id}/history"): {
        404: "No such job for this tenant",
        422: "since or max_points out of range",
    },
    ("POST", "/jobs/{job_id}/cancel"): {
        404: "No such job for this tenant",
        409: "The job has already finished",
    },
    ("POST", "/sweeps"): {
        400: UNPARSEABLE,
        404: "No such dataset for this tenant",
        409: "The Idempotency-Key was used before with a different request",
        413: "The body beyond the server's limits",
        422: "An invalid trial (named with its parameter), a grid beyond DNN_MAX_SWEEP_TRIALS, "
        "or an alias name not allowed",
        429: "Too many queued or running jobs for this tenant: no trial could start",
        503: "The job queue is unreachable (Celery executor); see Retry-After",
    },
    ("GET", "/sweeps"): {422: "limit or offset out of range"},
    ("GET", "/sweeps/{sweep_id}"): {404: "No such sweep for this tenant"},
    ("POST", "/sweeps/{sweep_id}/cancel"): {
        404: "No such sweep for this tenant",
        409: "The sweep has already finished",
    },
    ("GET", "/jobs/{job_id}/events"): {
        404: "No such job for this tenant",
        422: "since or Last-Event-ID out of range",
    },
    ("GET", "/jobs/{job_id}/curve.svg"): {
        404: "No such job for this tenant",
        422: "max_points out of range",
    },
    ("GET", "/jobs/{job_id}/curve.png"): {
        404: "No such job for this tenant",
        422: "max_points out of range",
    },
    ("GET", "/models"): {422: "limit or offset out of range"},
    ("GET", "/models/{model_id}"): {404: "No such model for this tenant"},
    ("DELETE", "/models/{model_id}"): {
        404: "No such model for this tenant",
        409: "An alias names this version; move or delete the alias first",
    },
    ("GET", "/models/{model_id}/onnx"): {
        404: "No such model for this tenant",
        409: "The stored weights no longer match their sha256 (model_integrity_error)",
        501: "The server lacks the optional onnx package (pip install dnn-service[onnx])",
    },
    ("GET", "/models/names/{name}"): {404: "No model of this name for this tenant"},
    ("PUT", "/models/names/{name}/aliases/{alias}"): {
        400: UNPARSEABLE,
        404: "No such version of this model name for this tenant",
        422: "An alias outside the documented character set, or an invalid version",
    },
    ("DELETE", "/models/names/{name}/aliases/{alias}"): {
        404: "No such alias of this model name for this tenant",
        422: "An alias outside the documented character set",
    },
    ("GET", "/models/{model_id}/weights"): {
        404: "No such model for this tenant",
        409: "The stored weights no longer match their sha256 (model_integrity_error)",
    },
    ("POST", "/predict"): {
        400: UNPARSEABLE,
        404: "No such model (id, or name and version) for this tenant",
        409: "The stored weights no longer match their sha256 (model_integrity_error)",
        413: "More rows than DNN_MAX_PREDICT_ROWS, or a body beyond the limit",
        415: "A body neither JSON nor .npy (application/x-npy, application/octet-stream), "
        "or a compressed one",
        422: "Rows of the wrong width, non-numbers, or both or neither of model_id and model",
    },
    ("GET", "/admin/tenants"): {403: "The route needs an admin API key"},
    ("GET", "/admin/keys"): {403: "The route needs an admin API key"},
    ("POST", "/admin/keys"): {
        400: UNPARSEABLE,
        403: "The route needs an admin API key",
        422: "A tenant name outside [A-Za-z0-9_.-], at most 64 characters",
    },
    ("DELETE", "/admin/keys/{key_id}"): {
        403: "The route needs an admin API key",
        404: "No such key",
    },
}

DATASET: dict[str, Any] = {
    "id": DATASET_ID,
    "name": "breast_cancer.csv",
    "created_at": CREATED,
    "n_samples": 569,
    "n_features": 30,
    "input_shape": [30],
    "task": "binary",
    "classes": ["benign", "malignant"],
}
HYPERPARAMETERS: dict[str, Any] = {
    "hidden_layers": [16, 8],
    "n_iterations": 500,
    "learning_rate": 0.01,
    "optimizer": "adam",
    "validation_fraction": 0.2,
}
SUMMARY: dict[str, Any] = {
    "id": JOB_ID,
    "status": "succeeded",
    "progress": 1.0,
    "created_at": CREATED,
    "started_at": "2026-11-27T09:30:00.012Z",
    "finished_at": "2026-11-27T09:30:04.310Z",
    "dataset_id": DATASET_ID,
    "model_name": "breast_cancer.csv",
    "model_id": MODEL_ID,
    "error": None,
    "hyperparameters": {**HYPERPARAMETERS, "task": "binary"},
    "metrics": {
        "cost": 0.041,
        "accuracy": 0.989,
        "val_cost": 0.0873,
        "val_accuracy": 0.974,
        "best_iteration": 471,
        "stopped_early": False,
        "n_iterations_run": 500,
    },
}
POINTS = [
    {
        "iteration": 499,
        "cost": 0.0412,
        "accuracy": 0.989,
        "val_cost": 0.0871,
        "val_accuracy": 0.974,
    },
    {
        "iteration": 500,
        "cost": 0.0410,
        "accuracy": 0.989,
        "val_cost": 0.0873,
        "val_accuracy": 0.974,
    },
]
MODEL: dict[str, Any] = {
    "id": MODEL_ID,
    "name": "breast_cancer.csv",
    "version": 1,
    "created_at": "2026-11-27T09:30:04.300Z",
    "job_id": JOB_ID,
    "dataset_id": DATASET_ID,
    "architecture": {
        "layer_dims": [30, 16, 8, 1],
        "hidden_activation": "relu",
        "output": "sigmoid",
        "task": "binary",
        "dtype": "float32",
        "input_shape": [30],
        "classes": ["benign", "malignant"],
        "standardized": True,
    },
    "metrics": {"cost": 0.041, "accuracy": 0.989, "val_cost": 0.0873, "val_accuracy": 0.974},
    "sha256": "9b74c9897bac770ffc029102a200c5de6e0c6c5b0bba2c2f6b7c5f6e5d4c3b2a",
    "size_bytes": 3412,
}
KEY: dict[str, Any] = {
    "id": "7e1f",
    "tenant_id": "alice",
    "prefix": "dnn_3kq8Vw2y",
    "is_admin": False,
    "created_at": CREATED,
    "revoked_at": None,
}
PAGE = {"limit": 50, "offset": 0}
SWEEP_ID = "a3e5c7b9d1f24e6a8c0b2d4f6e8a0c2e"
SWEEP_SUMMARY: dict[str, Any] = {
    "id": SWEEP_ID,
    "name": "cancer-search",
    "status": "succeeded",
    "dataset_id": DATASET_ID,
    "metric": "val_cost",
    "goal": "min",
    "max_parallel": 2,
    "n_trials": 2,
    "n_started": 2,
    "promote": "production",
    "created_at": CREATED,
    "finished_at": "2026-11-27T09:30:09.120Z",
    "error": None,
}
TRIAL: dict[str, Any] = {
    "trial": 1,
    "job_id": JOB_ID,
    "status": "succeeded",
    "rank": 1,
    "params": {"learning_rate": 0.01},
    "hyperparameters": {**HYPERPARAMETERS, "task": "binary"},
    "metrics": MODEL["metrics"],
    "model_id": MODEL_ID,
    "started_at": "2026-11-27T09:30:00.012Z",
    "finished_at": "2026-11-27T09:30:04.310Z",
}

# (success status, media type, example body) per operation.
EXAMPLES: dict[Key, tuple[str, str, Any]] = {
    ("POST", "/datasets"): ("201", "application/json", DATASET),
    ("GET", "/datasets"): ("200", "application/json", {"items": [DATASET], **PAGE}),
    ("GET", "/datasets/{dataset_id}"): ("200", "application/json", DATASET),
    ("POST", "/train"): (
        "202",
        "application/json",
        {
            "id": JOB_ID,
            "job_id": JOB_ID,
            "status": "queued",
            "dataset_id": DATASET_ID,
            "location": f"/jobs/{JOB_ID}",
        },
    ),
    ("GET", "/jobs"): ("200", "application/json", {"items": [SUMMARY], **PAGE}),
    ("GET", "/jobs/{job_id}"): (
        "200",
        "application/json",
        {**SUMMARY, "history": POINTS},
    ),
    ("GET", "/jobs/{job_id}/history"): (
        "200",
        "application/json",
        {"job_id": JOB_ID, "status": "succeeded", "since": 498, "points": POINTS},
    ),
    ("POST", "/jobs/{job_id}/cancel"): (
        "202",
        "application/json",
        {
            **SUMMARY,
            "status": "cancelling",
            "progress": 0.42,
            "finished_at": None,
            "model_id": None,
        },
    ),
    ("GET", "/jobs/{job_id}/events"): (
        "200",
        "text/event-stream",
        'event: point\nid: 500\ndata: {"iteration": 500, "cost": 0.041, "accuracy": 0.989}\n\n'
        'event: status\ndata: {"status": "succeeded", "progress": 1.0, "iteration": 500, '
        '"n_iterations": 500}\n\n',
    ),
    ("GET", "/jobs/{job_id}/curve.svg"): ("200", "image/svg+xml", "<svg ...>...</svg>"),
    ("GET", "/jobs/{job_id}/curve.png"): ("200", "image/png", "(PNG bytes)"),
    ("POST", "/sweeps"): (
        "202",
        "application/json",
        {
            "id": SWEEP_ID,
            "sweep_id": SWEEP_ID,
            "status": "running",
            "location": f"/sweeps/{SWEEP_ID}",
        },
    ),
    ("GET", "/sweeps"): ("200", "application/json", {"items": [SWEEP_SUMMARY], **PAGE}),
    ("GET", "/sweeps/{sweep_id}"): (
        "200",
        "application/json",
        {
            **SWEEP_SUMMARY,
            "search": {"grid": {"learning_rate": [0.001, 0.01]}},
            "trials": [
                TRIAL,
                {
                    **TRIAL,
                    "trial": 0,
                    "job_id": "6d2e8f0a1b3c4d5e6f708192a3b4c5d6",
                    "rank": 2,
                    "params": {"learning_rate": 0.001},
                    "metrics": {**MODEL["metrics"], "val_cost": 0.1204},
                    "model_id": "e2f4a6c8b0d14e3f5a7c9e1b3d5f7a9c",
                },
            ],
            "best": {
                "job_id": JOB_ID,
                "model_id": MODEL_ID,
                "hyperparameters": TRIAL["hyperparameters"],
                "metrics": MODEL["metrics"],
            },
        },
    ),
    ("POST", "/sweeps/{sweep_id}/cancel"): (
        "202",
        "application/json",
        {**SWEEP_SUMMARY, "status": "cancelled", "n_started": 1},
    ),
    ("GET", "/models"): ("200", "application/json", {"items": [MODEL], **PAGE}),
    ("GET", "/models/{model_id}"): ("200", "application/json", MODEL),
    ("GET", "/models/{model_id}/weights"): (
        "200",
        "application/octet-stream",
        "(safetensors bytes)",
    ),
    ("GET", "/models/{model_id}/onnx"): ("200", "application/octet-stream", "(ONNX bytes)"),
    ("GET", "/models/names/{name}"): (
        "200",
        "application/json",
        {
            "name": "breast_cancer",
            "versions": [
                {"id": MODEL_ID, "version": 2, "created_at": CREATED, "metrics": {"cost": 0.05}}
            ],
            "aliases": {"production": 2},
            "alias_history": [
                {
                    "alias": "production",
                    "version": 2,
                    "previous_version": 1,
                    "at": CREATED,
                    "by": "7e1f",
                }
            ],
        },
    ),
    ("PUT", "/models/names/{name}/aliases/{alias}"): (
        "200",
        "application/json",
        {
            "name": "breast_cancer",
            "alias": "production",
            "version": 2,
            "model_id": MODEL_ID,
            "previous_version": 1,
        },
    ),
    ("POST", "/predict"): (
        "200",
        "application/json",
        {"model_id": MODEL_ID, "predictions": ["malignant"], "probabilities": [[0.004, 0.996]]},
    ),
    ("GET", "/admin/tenants"): (
        "200",
        "application/json",
        {"items": [{"tenant_id": "alice", "active_keys": 1}]},
    ),
    ("GET", "/admin/keys"): ("200", "application/json", {"items": [KEY]}),
    ("POST", "/admin/keys"): (
        "201",
        "application/json",
        {**KEY, "key": "dnn_3kq8Vw2yQbH1xZ0rT5mN7pL4sD6fG9jK"},
    ),
    ("DELETE", "/admin/keys/{key_id}"): (
        "200",
        "application/json",
        {**KEY, "revoked_at": "2026-11-27T10:00:00Z"},
    ),
    ("GET", "/healthz"): ("200", "application/json", {"status": "ok"}),
    ("GET", "/readyz"): (
        "200",
        "application/json",
        {"status": "ready", "checks": {"database": "ok", "workers": "ok"}},
    ),
    ("GET", "/metrics"): (
        "200",
        "text/plain; version=0.0.4; charset=utf-8",
        'dnn_jobs{state="running"} 1.0\n',
    ),
}

REQUEST_EXAMPLES: dict[Key, dict[str, Any]] = {
    ("POST", "/datasets"): {
        "application/json": {
            "name": "xor",
            "features": [[0, 0], [0, 1], [1, 0], [1, 1]],
            "labels": [0, 1, 1, 0],
        },
        "multipart/form-data": {
            "file": "(the bytes of examples/breast_cancer.csv)",
            "label_column": "diagnosis",
            "name": "breast_cancer.csv",
        },
    },
    ("POST", "/train"): {
        "application/json": {
            "dataset_id": DATASET_ID,
            "name": "breast_cancer",
            "hyperparameters": {
                **HYPERPARAMETERS,
                "batch_size": 64,
                "l2": 0.001,
                "lr_decay": "inverse_time",
                "early_stopping": {"patience": 20, "min_delta": 0.0},
            },
        }
    },
    ("POST", "/sweeps"): {
        "application/json": {
            "dataset_id": DATASET_ID,
            "name": "cancer-search",
            "hyperparameters": {"n_iterations": 500, "validation_fraction": 0.2},
            "grid": {"learning_rate": [0.001, 0.01], "hidden_layers": [[16], [16, 8]]},
            "max_parallel": 2,
            "promote": "production",
        }
    },
    ("POST", "/predict"): {"application/json": {"model_id": MODEL_ID, "instances": [ROW]}},
    ("POST", "/admin/keys"): {"application/json": {"tenant": "alice", "admin": False}},
    ("PUT", "/models/names/{name}/aliases/{alias}"): {"application/json": {"version": 2}},
}

NPY = {"schema": {"type": "string", "format": "binary"}}
# Bodies a route reads itself, which FastAPI cannot see: POST /predict also takes a .npy batch
# (app/api/predict_binary.py answers it; the JSON route's entry is the one documented).
EXTRA_REQUEST_CONTENT: dict[Key, dict[str, Any]] = {
    ("POST", "/predict"): {"application/x-npy": NPY}
}
EXTRA_RESPONSE_CONTENT: dict[Key, dict[str, Any]] = {
    ("POST", "/predict"): {"200": {"application/x-npy": NPY}}
}
EXTRA_DESCRIPTION: dict[Key, str] = {
    ("POST", "/predict"): (
        'JSON: `{"model_id"}`, `{"model": NAME, "version"?}` or `{"model": NAME, "alias": ALIAS}` '
        'plus `"instances"`.\n\n'
        "Large batches: send the rows as a `.npy` array `(n, n_features)` of float32 or float64 "
        "with `Content-Type: application/x-npy` and `?model_id=ID` (or `?model=NAME` with "
        "`version` or `alias`) in the query (read with "
        "`allow_pickle=False`); add `Accept: application/x-npy` to get the predictions back "
        "as `.npy`, otherwise they come as JSON."
    )
}
