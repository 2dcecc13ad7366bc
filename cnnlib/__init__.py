"""cnnlib: build, train, look inside and export the small MNIST CNN of the CNN Architecture demo.

Stages, one module each: data -> model -> train -> export -> verify; `pipeline` runs them all.
"""

from cnnlib.data import Mnist, load_mnist
from cnnlib.export import load_state_dict, write_artifacts
from cnnlib.model import CNN, count_parameters
from cnnlib.pipeline import ensure_artifacts, regenerate
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
