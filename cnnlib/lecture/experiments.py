"""The lecture's tools, small experiments behind the narration's conclusions: any model trained
the way the lecture trains its CNN (same seed, same shuffles, same steps), a layer frozen or put
back to its random start, and accuracy on test digits shifted by whole pixels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from cnnlib.data import Mnist
from cnnlib.lecture.convolution import shift
from cnnlib.model import CNN
from cnnlib.train import TrainConfig, evaluate, run_epoch, seed_everything, single_threaded


def mlp() -> nn.Sequential:
    """The MLP of notebook 01: 784 pixels, one hidden layer as wide as fc1, 10 scores."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def train_model(
    make_model: Callable[[], nn.Module],
    config: TrainConfig,
    data: Mnist,
    frozen: Sequence[str] = (),
) -> nn.Module:
    """Train the model that `make_model` builds exactly as `cnnlib.train` trains the CNN: seeded
    the same way (so a CNN starts from the same random weights), Adam, the same shuffled batches,
    `epochs * batches_per_epoch` steps, on the CPU. The layers named in `frozen` keep their
    starting weights. Returns the trained model."""
    seed_everything(config.seed)
    model = make_model()
    for name in frozen:
        model.get_submodule(name).requires_grad_(False)
    trainable = [weight for weight in model.parameters() if weight.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, fused=True)
    with single_threaded(), tqdm(disable=True) as quiet:
        for order in training_orders(config, len(data.train_labels)):
            run_epoch(model, data.train_pixels, data.train_labels, order, config, optimizer, quiet)
    return model.eval()


def training_orders(config: TrainConfig, images: int) -> Iterator[torch.Tensor]:
    """The shuffled order of the training images in each trained epoch (1..epochs), drawn as
    `cnnlib.train` draws them (epoch 0, which only measures, draws one first)."""
    shuffler = torch.Generator().manual_seed(config.seed)
    torch.randperm(images, generator=shuffler)  # epoch 0's
    for _ in range(config.epochs):
        yield torch.randperm(images, generator=shuffler)


def never_drawn(config: TrainConfig, images: int) -> int:
    """How many of the training images no training step used: each epoch uses the first
    `batches_per_epoch * batch_size` of its shuffled order."""
    drawn = torch.zeros(images, dtype=torch.bool)
    for order in training_orders(config, images):
        drawn[order[: config.batches_per_epoch * config.batch_size]] = True
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


def standard_error(percent: float, images: int) -> float:
    """One binomial standard error of an accuracy measured on `images` images, in points:
    100 * sqrt(p (1 - p) / n); about 0.14 points for 98% on 10,000 images."""
    p = percent / 100
    return 100 * (p * (1 - p) / images) ** 0.5
