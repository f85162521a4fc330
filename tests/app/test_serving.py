"""The inference service on its own: resolve, validate, run and shape, without a server.

A real SQLite database holds the models; the networks are built from known parameters so
the expected answers are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app import serving
from app.db.engine import make_engine, make_read_session_factory, make_session_factory
from app.db.migrate import upgrade_to_head
from app.db.tables import Model
from app.errors import InvalidInput, NotFound, PayloadTooLarge, StoredModelCorrupt
from app.model_cache import LoadedModel, ModelCache, ModelRef
from app.serving import InferenceService
from app.store import models
from core import Network

MAX_ROWS = 10


def tie_network() -> Network:
    """A binary classifier whose output is exactly 0.5 for every input (all weights zero)."""
    return Network.from_parameters(
        [np.zeros((3, 1), dtype=np.float32)],
        [np.zeros(1, dtype=np.float32)],
        output="sigmoid",
        classes=["no", "yes"],
    )


def small_network(dtype: str = "float32", output: str = "softmax") -> Network:
    rng = np.random.default_rng(3)
    n_out = 3 if output == "softmax" else 1
    classes = {"softmax": ["a", "b", "c"], "sigmoid": [0, 1], "identity": None}[output]
    return Network.from_parameters(
        [rng.normal(size=(3, 4)), rng.normal(size=(4, n_out))],
        [rng.normal(size=4), rng.normal(size=n_out)],
        output=output,
        dtype=dtype,
        classes=classes,
    )


def loaded(network: Network) -> LoadedModel:
    return LoadedModel("m1", "net", 1, network)


def test_a_probability_of_one_half_is_class_one_as_in_the_core() -> None:
    network = tie_network()
    X = np.ones((2, 3))

    result = serving.run(loaded(network), serving.validate(network, X, max_rows=MAX_ROWS))

    assert result.probabilities is not None
    assert result.probabilities.tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert result.predictions.tolist() == network.predict(X).tolist() == ["yes", "yes"]


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_answers_equal_the_cores_predict_and_predict_proba(output: str) -> None:
    network = small_network("float64", output)
    X = np.random.default_rng(0).normal(size=(5, 3))

    result = serving.run(loaded(network), serving.validate(network, X, max_rows=MAX_ROWS))

    np.testing.assert_array_equal(result.predictions, network.predict(X))
    if output == "identity":
        assert result.probabilities is None
    else:
        np.testing.assert_array_equal(result.probabilities, network.predict_proba(X))
    body = orjson.loads(result.json_bytes())
    assert body["model_id"] == "m1"
    assert body["predictions"] == network.predict(X).tolist()
    if result.probabilities is not None:
        assert body["probabilities"] == network.predict_proba(X).tolist()


@pytest.mark.parametrize("value", [1e39, -1e39, 1e308])
def test_values_beyond_float32_are_refused_naming_the_limit(value: float) -> None:
    X = np.zeros((3, 3))
    X[2, 1] = value

    with pytest.raises(InvalidInput) as refused:
        serving.validate(small_network("float32"), X, max_rows=MAX_ROWS)

    assert "3.40282e+38" in refused.value.message and "float32" in refused.value.message
    assert refused.value.details[0]["loc"] == ["instances", 2, 1]


def test_a_float64_model_takes_what_float32_cannot() -> None:
    network = small_network("float64")
    X = np.full((1, 3), 1e39)
    assert serving.validate(network, X, max_rows=MAX_ROWS).dtype == np.float64


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_values_are_refused(value: float) -> None:
    X = np.zeros((2, 3))
    X[1, 0] = value
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        serving.validate(small_network(), X, max_rows=MAX_ROWS)


def test_shape_rows_and_kind_are_checked_once_here() -> None:
    network = small_network()
    with pytest.raises(PayloadTooLarge):
        serving.validate(network, np.zeros((MAX_ROWS + 1, 3)), max_rows=MAX_ROWS)
    with pytest.raises(InvalidInput, match="expects 3"):
        serving.validate(network, np.zeros((2, 4)), max_rows=MAX_ROWS)
    with pytest.raises(InvalidInput, match="n >= 1"):
        serving.validate(network, np.zeros((0, 3)), max_rows=MAX_ROWS)
    with pytest.raises(InvalidInput, match="numbers"):
        serving.validate(network, np.ones((2, 3), dtype=bool), max_rows=MAX_ROWS)


def test_shaped_samples_are_taken_in_the_models_input_shape_only() -> None:
    rng = np.random.default_rng(4)
    image = Network.from_parameters(
        [rng.normal(size=(6, 2))],
        [np.zeros(2)],
        output="softmax",
        classes=["a", "b"],
        input_shape=(3, 2, 1),
    )
    images = rng.normal(size=(4, 3, 2, 1)).astype(np.float32)
    rows = serving.validate(image, images, max_rows=MAX_ROWS)
    np.testing.assert_array_equal(rows, images.reshape(4, 6))
    # As many values per sample, another shape: not this model's input.
    for shape in ((4, 2, 3, 1), (4, 3, 2), (4, 6, 1)):
        with pytest.raises(InvalidInput, match=r"do not match the model's input shape \[3, 2, 1\]"):
            serving.validate(image, images.reshape(shape), max_rows=MAX_ROWS)
    # A model of flat rows takes only rows.
    with pytest.raises(InvalidInput, match=r"input shape \[3\]"):
        serving.validate(small_network(), np.zeros((2, 3, 1)), max_rows=MAX_ROWS)


def test_inputs_are_cast_once_to_the_models_dtype_without_copying_when_they_fit() -> None:
    network = small_network("float32")
    X = np.ones((2, 3), dtype=np.float32)
    assert serving.validate(network, X, max_rows=MAX_ROWS) is X
    cast = serving.validate(network, np.ones((2, 3), dtype=np.int64), max_rows=MAX_ROWS)
    assert cast.dtype == np.float32 and cast.flags.c_contiguous


def test_an_output_that_overflows_inside_the_network_is_refused_not_encoded() -> None:
    # Finite inputs, but standardization by a tiny scale takes them past float32's range.
    rng = np.random.default_rng(5)
    network = Network.from_parameters(
        [rng.normal(size=(3, 2))],
        [np.zeros(2)],
        output="softmax",
        classes=["x", "y"],
        feature_mean=np.zeros(3),
        feature_scale=np.full(3, 1e-30),
        dtype="float32",
    )
    X = serving.validate(network, np.full((1, 3), 1e30), max_rows=MAX_ROWS)
    with pytest.raises(InvalidInput, match="overflowed"):
        serving.run(loaded(network), X)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("12", 12), ("²", None), ("0", None), ("-1", None), ("1.0", None), ("9" * 11, None)],
)
def test_versions_in_paths_are_ascii_digits(text: str, expected: int | None) -> None:
    assert serving.parse_version(text, 2**31 - 1) == expected


# --- resolution against a real database ---------------------------------------------------


@pytest.fixture
def factories(tmp_path: Path) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield make_session_factory(engine), make_read_session_factory(engine)
    engine.dispose()


def store(factory: sessionmaker[Session], tenant: str, name: str, network: Network) -> Model:
    with factory() as session, session.begin():
        model = models.create_model(
            session,
            tenant_id=tenant,
            name=name,
            job_id="job",
            dataset_id=None,
            architecture={"task": network.task, "dtype": network.dtype},
            metrics={},
            weights=network.to_bytes(),
        )
        session.expunge(model)
    return model


@pytest.fixture
def service(factories: tuple[Any, Any]) -> InferenceService:
    return InferenceService(ModelCache(4), factories[1], max_rows=MAX_ROWS)


def test_resolves_by_id_name_and_version_within_the_tenant(
    factories: tuple[Any, Any], service: InferenceService
) -> None:
    write, _ = factories
    first = store(write, "alice", "net", small_network())
    second = store(write, "alice", "net", tie_network())
    store(write, "bob", "net", small_network())

    assert service.resolve("alice", ModelRef(model_id=first.id)).version == 1
    assert service.resolve("alice", ModelRef(name="net")).id == second.id
    assert service.resolve("alice", ModelRef(name="net", version=1)).id == first.id
    with pytest.raises(NotFound):
        service.resolve("bob", ModelRef(model_id=first.id))
    with pytest.raises(NotFound):
        service.resolve("alice", ModelRef(name="net", version=3))
    # A resolved reference is served from memory, and only to the tenant that resolved it.
    assert service.cached("alice", ModelRef(name="net")) is not None
    assert service.cached("bob", ModelRef(model_id=first.id)) is None


def test_infer_counts_per_model_for_the_statistics(
    factories: tuple[Any, Any], service: InferenceService
) -> None:
    row = store(factories[0], "alice", "net", tie_network())
    model = service.resolve("alice", ModelRef(model_id=row.id))

    assert service.infer(model, np.ones((3, 3))).predictions.tolist() == ["yes"] * 3
    with pytest.raises(InvalidInput):
        service.infer(model, np.ones((3, 2)))

    counts = service.stats.of(row.id)
    assert counts is not None
    assert (counts.success, counts.failure, counts.rows) == (1, 1, 3)


def test_a_blob_that_matches_its_sha256_but_is_no_model_is_an_integrity_error(
    factories: tuple[Any, Any], service: InferenceService
) -> None:
    write, _ = factories
    row = store(write, "alice", "net", small_network())
    garbage = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      not a model"
    with write() as session, session.begin():
        session.execute(
            update(Model)
            .where(Model.id == row.id)
            .values(weights=garbage, sha256=models.sha256_hex(garbage))
        )

    with pytest.raises(StoredModelCorrupt) as refused:
        service.resolve("alice", ModelRef(model_id=row.id))
    assert refused.value.code == "model_integrity_error"
    assert "cannot be read" in refused.value.message


def test_a_reference_is_an_id_or_a_name() -> None:
    with pytest.raises(ValueError):
        ModelRef()
    with pytest.raises(ValueError):
        ModelRef(model_id="x", name="y")
    with pytest.raises(ValueError):
        ModelRef(model_id="x", version=2)


def test_float32_answers_read_back_as_the_same_float32_numbers() -> None:
    network = small_network("float32")
    X = np.random.default_rng(8).normal(size=(6, 3))
    result = serving.run(loaded(network), serving.validate(network, X, max_rows=MAX_ROWS))

    body = orjson.loads(result.json_bytes())

    assert result.probabilities is not None and result.probabilities.dtype == np.float32
    np.testing.assert_array_equal(np.float32(body["probabilities"]), result.probabilities)
    assert body["predictions"] == result.predictions.tolist()
