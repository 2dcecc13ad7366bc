"""cnnlib: build, train, look inside and export the small MNIST CNN of the CNN Architecture demo.

Two halves. The factory makes the artifacts, one module per job: data -> model -> train ->
export (the JSON and snapshots) -> store (the sets on disk) -> verify (reading: safe reading of a
set; reference: an independent NumPy forward pass); `pipeline` runs them all, `__main__` is the
command line. The lecture's tools, `cnnlib.lecture`, show and explain the network in the notebooks:
claims, plots, and the helpers that compute what the notebooks show.
"""

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
