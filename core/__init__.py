"""A deep fully connected neural network written from scratch in NumPy.

The public API::

    net = Network((30, 16, 8, 1), hidden_activation="relu", output="sigmoid", seed=0)
    result = train(net, X, y, TrainConfig(learning_rate=0.1, n_iterations=2000))
    result.history[-1]["cost"], net.predict(X_new), net.predict_proba(X_new)
    same = Network.from_bytes(net.to_bytes())
    more = train(net, X, y, TrainConfig(n_iterations=500), state=result.state)  # continues
"""

from core.early_stopping import EarlyStopping
from core.errors import CoreError, DivergenceError, ModelFormatError
from core.network import Network
from core.state import TrainState
from core.train_config import TrainConfig
from core.training import CheckpointCallback, ProgressCallback, TrainResult, train

__all__ = [
    "CheckpointCallback",
    "CoreError",
    "DivergenceError",
    "EarlyStopping",
    "ModelFormatError",
    "Network",
    "ProgressCallback",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "train",
]
