"""The factory, training: the one training loop (`fit`), on 55,000 training images (5,000 are held
out for validation), and the factory's run of it: a snapshot and its metrics per epoch."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from cnnlib.data import VALIDATION_SIZE, Mnist, normalize, validation_split
from cnnlib.model import CNN

DEVICES = ("auto", "cpu", "cuda")
TRAIN_SIZE = 60_000 - VALIDATION_SIZE  # the training images left once validation is held out
MAX_EPOCHS = 200  # each epoch adds about 0.43 MB to the JSON the demo (and verify) reads whole
MAX_LR = 10.0  # far past divergence already; 1 is the classic "too large" class demo
EVAL_CHUNK = 250  # test images per forward pass when evaluating
OPTIMIZERS = {"Adam": torch.optim.Adam, "SGD": torch.optim.SGD}  # SGD: plain, w -= lr * grad


class ConfigError(ValueError):
    """A training parameter out of range; the message names it and what it accepts."""


def require(ok: bool, message: str) -> None:
    """ConfigError(message) unless `ok`."""
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Same config, same machine: same bytes."""

    epochs: int = 20
    batches_per_epoch: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 42
    device: str = "auto"

    def __post_init__(self) -> None:
        for name, low in [("epochs", 0), ("batches_per_epoch", 1), ("batch_size", 1), ("seed", 0)]:
            value = getattr(self, name)
            whole = isinstance(value, int) and not isinstance(value, bool)
            require(whole and value >= low, f"{name} must be an integer >= {low}, got {value!r}")
        most = f"at most {MAX_EPOCHS} (the JSON grows by about 0.43 MB an epoch)"
        require(self.epochs <= MAX_EPOCHS, f"epochs must be {most}, got {self.epochs}")
        require(self.seed < 2**64, f"seed must be at most 2**64 - 1 = {2**64 - 1}, got {self.seed}")
        require(
            self.batches_per_epoch * self.batch_size <= TRAIN_SIZE,
            f"batches_per_epoch * batch_size must be at most {TRAIN_SIZE} (one pass over the "
            f"training images), got {self.batches_per_epoch} * {self.batch_size}",
        )
        lr = self.lr
        number = isinstance(lr, int | float) and not isinstance(lr, bool) and math.isfinite(lr)
        require(number and lr > 0, f"lr must be a positive finite number, got {lr!r}")
        require(lr <= MAX_LR, f"lr must be at most {MAX_LR:g}, got {lr!r}")
        devices = ", ".join(DEVICES)
        require(self.device in DEVICES, f"device must be one of {devices}, got {self.device!r}")
        require(
            self.device != "cuda" or torch.cuda.is_available(),
            "device 'cuda' was asked for but CUDA is not available here; "
            "use device 'auto' or 'cpu'",
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(auto if name == "auto" else name)


@contextmanager
def single_threaded() -> Iterator[None]:
    """PyTorch on one thread: for tensors this small, a second one costs what it saves."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def start(
    config: TrainConfig,
    make_model: Callable[[], nn.Module] = CNN,
    frozen: Sequence[str] = (),
    optimizer: str = "Adam",
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A fresh model from the config's seed, `frozen` layers kept at their start, its optimizer."""
    choices = ", ".join(OPTIMIZERS)
    require(optimizer in OPTIMIZERS, f"optimizer must be one of {choices}, got {optimizer!r}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # for deterministic cuBLAS
    torch.manual_seed(config.seed)
    # Every CPU kernel used here is deterministic; on CUDA, one that is not only warns.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    model = make_model().to(resolve_device(config.device))
    for name in frozen:
        model.get_submodule(name).requires_grad_(False)
    trainable = [weight for weight in model.parameters() if weight.requires_grad]
    # fused: one kernel updates each weight tensor, instead of a dozen small ops per tensor
    options = {"fused": True} if optimizer == "Adam" else {}
    return model, OPTIMIZERS[optimizer](trainable, lr=config.lr, **options)


def training_images(images: int = TRAIN_SIZE) -> torch.Tensor:
    """Indices into the 60,000 training images of the first `images` that training may use."""
    require(1 <= images <= TRAIN_SIZE, f"images must be between 1 and {TRAIN_SIZE}, got {images!r}")
    return validation_split(TRAIN_SIZE + VALIDATION_SIZE)[0][:images]


def shuffles(config: TrainConfig, images: int = TRAIN_SIZE) -> Iterator[torch.Tensor]:
    """For epochs 0..config.epochs, the positions (in `training_images(images)`) of that epoch's
    batches, in order: the start of a fresh shuffle (epoch 0 draws one too, and takes no step)."""
    shuffler = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs + 1):
        order = torch.randperm(images, generator=shuffler)
        yield order[: config.batches_per_epoch * config.batch_size]


@dataclass
class Epoch:
    """One epoch of the training loop, as it ends."""

    number: int  # 0 is the untrained model, measured without any step
    loss: float  # mean training cross-entropy over the epoch's batches
    accuracy: float  # percent right over the same images
    drawn: torch.Tensor  # indices into the 60,000 training images of the images it used


def run_epoch(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    optimizer: torch.optim.Optimizer | None,
) -> tuple[float, float]:
    """The images of `pixels` (uint8) that `order` lists, `batch_size` at a time, each batch
    normalized as it is drawn: one optimizer step per batch; no step if no optimizer.

    Returns the mean loss over the batches and the accuracy (percent) over the images.
    """
    model.train(optimizer is not None)
    total_loss = torch.zeros((), device=pixels.device)
    correct = torch.zeros((), dtype=torch.long, device=pixels.device)
    batches = order.split(batch_size)
    for batch in batches:
        with torch.set_grad_enabled(optimizer is not None):
            logits = model(normalize(pixels[batch]))
            loss = F.cross_entropy(logits, labels[batch])
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total_loss += loss.detach()
        correct += (logits.argmax(dim=1) == labels[batch]).sum()
    return total_loss.item() / len(batches), 100.0 * correct.item() / len(order)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    data: Mnist,
    images: int = TRAIN_SIZE,
    measure_start: bool = False,
) -> Iterator[Epoch]:
    """The training loop: train `model` on the first `images` training images for config.epochs
    epochs of batches drawn by `shuffles`, and yield each epoch as it ends (epoch 0, the
    untrained model, only if `measure_start`); between two epochs the caller may look at it."""
    trained_on = training_images(images)
    device = next(model.parameters()).device
    pixels = data.train_pixels[trained_on].to(device)
    labels = data.train_labels[trained_on].to(device)
    with single_threaded():
        for number, order in enumerate(shuffles(config, images)):
            if number == 0 and not measure_start:
                continue
            step = optimizer if number > 0 else None
            loss, accuracy = run_epoch(
                model, pixels, labels, order.to(device), config.batch_size, step
            )
            yield Epoch(number, loss, accuracy, trained_on[order])


@torch.inference_mode()
def predict(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """The logits for uint8 `pixels` [N, 28, 28], EVAL_CHUNK images per forward pass."""
    model.eval()
    return torch.cat([model(normalize(chunk)) for chunk in pixels.split(EVAL_CHUNK)])


def scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (percent) of `logits` for `labels`."""
    total_loss = torch.zeros((), dtype=torch.float64, device=logits.device)
    for chunk, chunk_labels in zip(logits.split(EVAL_CHUNK), labels.split(EVAL_CHUNK), strict=True):
        total_loss += F.cross_entropy(chunk, chunk_labels, reduction="sum")
    correct = (logits.argmax(dim=1) == labels).sum()
    return total_loss.item() / len(labels), 100.0 * correct.item() / len(labels)


def evaluate(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (percent) of `model` over uint8 `pixels`."""
    return scores(predict(model, pixels), labels)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights, safe from later updates."""
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


@dataclass
class EpochResult:
    """The metrics after one epoch, and a copy of the weights at that moment."""

    epoch: int
    loss: float  # mean training cross-entropy over the epoch's batches
    train_accuracy: float  # percent, over the same batches
    test_loss: float  # mean cross-entropy over the whole test set
    test_accuracy: float  # percent, over the whole test set
    validation_loss: float  # mean cross-entropy over the 5,000 held-out training images
    validation_accuracy: float  # percent, over the same images
    state_dict: dict[str, torch.Tensor]
    test_logits: torch.Tensor  # [10000, 10], on the CPU: what the test metrics are computed from


class Evaluator:
    """Computes snapshots' logits on held-out images in a thread of its own while the caller
    trains on."""

    def __init__(self, model: nn.Module, sets: dict[str, torch.Tensor]):
        self.model = copy.deepcopy(model)  # its own copy: the caller's model keeps changing
        self.sets = sets  # name -> uint8 pixels
        self.thread = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))

    def submit(self, state_dict: dict[str, torch.Tensor]) -> Future[dict[str, torch.Tensor]]:
        """A future of each set's logits with `state_dict`."""
        return self.thread.submit(self._predict, state_dict)

    def _predict(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.model.load_state_dict(state_dict)
        return {name: predict(self.model, pixels) for name, pixels in self.sets.items()}

    def close(self) -> None:
        self.thread.shutdown(wait=True, cancel_futures=True)


def train_epochs(config: TrainConfig, data: Mnist, progress: bool = True) -> Iterator[EpochResult]:
    """Train a fresh CNN with `fit`; yield epochs 0..config.epochs with metrics and weights, epoch
    k once epoch k + 1 has trained (it is evaluated meanwhile)."""
    model, optimizer = start(config)
    device = next(model.parameters()).device
    held_out = validation_split(len(data.train_labels))[1]
    pixels = {"test": data.test_pixels, "validation": data.train_pixels[held_out]}
    labels = {"test": data.test_labels, "validation": data.train_labels[held_out]}
    evaluator = Evaluator(model, {name: images.to(device) for name, images in pixels.items()})
    total = (config.epochs + 1) * config.batches_per_epoch
    bar = tqdm(total=total, unit="batch", desc="training", disable=not progress)

    def finished(epoch: Epoch, state: dict, predicted: Future) -> EpochResult:
        logits = {name: values.cpu() for name, values in predicted.result().items()}
        test, validation = (scores(logits[name], labels[name]) for name in ("test", "validation"))
        bar.set_postfix(epoch=epoch.number, val_acc=f"{validation[1]:.2f}%")
        return EpochResult(
            epoch.number, epoch.loss, epoch.accuracy, *test, *validation, state, logits["test"]
        )

    with bar, closing(evaluator):
        waiting = None  # the previous epoch, while its evaluation runs
        for epoch in fit(model, optimizer, config, data, measure_start=True):
            bar.update(config.batches_per_epoch)
            state = snapshot(model)
            current = (epoch, state, evaluator.submit(state))
            if waiting is not None:
                yield finished(*waiting)
            waiting = current
        yield finished(*waiting)


def train(config: TrainConfig, data: Mnist, progress: bool = True) -> list[EpochResult]:
    """Train a fresh CNN; return epochs 0..config.epochs, each with its metrics and weights."""
    return list(train_epochs(config, data, progress))
