"""cnnlib: the factory that trains, exports and checks the CNN Architecture demo's MNIST CNN (one
module per job; `python -m cnnlib`), and `cnnlib.lecture`, the notebooks' tools."""

from cnnlib.data import Mnist, load_mnist
from cnnlib.export import load_state_dict
from cnnlib.model import CNN, count_parameters
from cnnlib.pipeline import ensure_artifacts, regenerate, write_artifacts
from cnnlib.train import TrainConfig, train
from cnnlib.verify import verify

__all__ = [
    "CNN",
    "Mnist",
    "TrainConfig",
    "count_parameters",
    "ensure_artifacts",
    "load_mnist",
    "load_state_dict",
    "regenerate",
    "train",
    "verify",
    "write_artifacts",
]
