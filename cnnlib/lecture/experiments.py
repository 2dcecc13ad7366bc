"""The lecture's tools, small experiments behind the narration's conclusions: any model trained
with the lecture's own loop (`cnnlib.train.fit`: same seed, same shuffles, same steps), a layer
frozen or put back to its random start, a small training set, the images no step drew, and
accuracy on test digits shifted by whole pixels."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from cnnlib.data import Mnist
from cnnlib.lecture.convolution import shift
from cnnlib.model import CNN
from cnnlib.train import (
    TRAIN_SIZE,
    TrainConfig,
    evaluate,
    fit,
    shuffles,
    single_threaded,
    start,
    training_images,
)


def mlp() -> nn.Sequential:
    """The MLP of notebook 01: 784 pixels, one hidden layer as wide as fc1, 10 scores."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def train_model(
    make_model: Callable[[], nn.Module],
    config: TrainConfig,
    data: Mnist,
    frozen: Sequence[str] = (),
    optimizer: str = "Adam",
    images: int = TRAIN_SIZE,
) -> nn.Module:
    """Train the model that `make_model` builds with the lecture's own loop (`cnnlib.train.fit`):
    the same seed (so a CNN starts from the same random weights), the same shuffled batches, the
    same steps; the layers named in `frozen` keep their starting weights. `images` trains on
    only the first that many of the 55,000 training images. Returns the trained model, on the CPU.
    """
    model, update = start(config, make_model, frozen, optimizer)
    for _ in fit(model, update, config, data, images):
        pass
    return model.cpu().eval()


def never_drawn(config: TrainConfig, images: int = TRAIN_SIZE) -> int:
    """How many of the (first `images`) training images no training step used: the loop's own
    shuffles, each trained epoch using the first `batches_per_epoch * batch_size` of its order
    (epoch 0, which only measures, is left out)."""
    drawn = torch.zeros(len(training_images(images)), dtype=torch.bool)
    for order in itertools.islice(shuffles(config, images), 1, None):
        drawn[order] = True
    return int((~drawn).sum())


def network(state: Mapping[str, torch.Tensor]) -> CNN:
    """A CNN with these weights, ready to read digits."""
    model = CNN()
    model.load_state_dict(state)
    return model.eval()


def loss(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy of `model` over `pixels` (uint8 images)."""
    with single_threaded():
        return evaluate(model, pixels, labels)[0]


def accuracy(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of `pixels` (uint8 images) that `model` reads right."""
    with single_threaded():
        return evaluate(model, pixels, labels)[1]


def shifted_accuracies(
    model: nn.Module, data: Mnist, shifts: Iterable[int] = range(5)
) -> dict[int, float]:
    """Test accuracy with every test digit moved right by each number of pixels (black enters
    on the left, what leaves on the right is lost)."""
    return {
        pixels: accuracy(model, shift(data.test_pixels, 0, pixels, fill=0), data.test_labels)
        for pixels in shifts
    }


def with_layer_from(
    state: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor], layer: str
) -> CNN:
    """A CNN with the weights of `state`, except `layer`'s, which come from `other`."""
    return network(
        {name: (other if name.startswith(f"{layer}.") else state)[name] for name in state}
    )
