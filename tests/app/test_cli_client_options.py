"""The client's `train` flags: one per hyperparameter, sent as the API's own field names."""

from __future__ import annotations

import argparse

import pytest

from app.cli.commands import register
from app.cli.main import main
from app.cli.options import hyperparameters_from
from app.schemas.jobs import EarlyStoppingIn, Hyperparameters


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["train", "data.csv", *argv])


def test_unset_flags_leave_the_server_defaults() -> None:
    assert hyperparameters_from(parse()) == {}


def test_every_hyperparameter_has_a_flag() -> None:
    args = parse(
        *("--hidden", "8,4", "--activation", "tanh", "--task", "multiclass"),
        *("--learning-rate", "0.2", "--iterations", "9", "--optimizer", "nesterov"),
        *("--momentum", "0.5", "--beta1", "0.8", "--beta2", "0.99", "--epsilon", "1e-6"),
        *("--batch-size", "4", "--no-shuffle", "--l2", "0.1", "--lr-decay", "step"),
        *("--decay-rate", "0.7", "--decay-steps", "3", "--init", "xavier"),
        *("--validation-fraction", "0.2", "--early-stopping", "5", "--keep-last"),
        *("--no-standardize", "--seed", "3", "--record-every", "2", "--dtype", "float64"),
    )
    sent = Hyperparameters.model_validate(hyperparameters_from(args))
    assert sent.model_fields_set == set(Hyperparameters.model_fields)
    assert sent.early_stopping == EarlyStoppingIn(patience=5, restore_best=False)
    assert (sent.beta1, sent.shuffle, sent.dtype, sent.task) == (
        0.8,
        False,
        "float64",
        "multiclass",
    )


def test_train_without_a_dataset_is_a_usage_error_of_train_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: dnn-service train ")
    assert "dnn-service train: error: train needs a dataset file or --dataset ID" in err
