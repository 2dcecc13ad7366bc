"""Baseline (a) of the benchmark: the seed's training script, re-created the seed's way.

The seed trained the same small CNN, but its data path is the textbook one:

- `torchvision.datasets.MNIST` with a per-sample `ToTensor()` + `Normalize()` transform, read
  through a `DataLoader` (batch 64, shuffled, stopped after `--batches-per-epoch` batches);
- the whole 10,000-image test set evaluated every epoch through a second `DataLoader`, also in
  batches of 64;
- the 10 samples per digit found by walking the whole test set once per digit, image by image
  through the transform, with no early exit: ten full passes;
- the first digit 3, for the feature maps, searched for the same way after every epoch;
- the samples written as nested lists of the denormalized float pixels (the transform's output
  times the std plus the mean), every weight turned into Python floats with `.tolist()`, all
  written by `json.dump(indent=2)`.

Only the network itself is shared with cnnlib (`cnnlib.model.CNN`), so (a) and (b) train the same
architecture with the same hyper-parameters. It never downloads, and writes only into `--out`:

    python bench/seed_baseline.py --out /tmp/seed-run [--epochs 20] [--batches-per-epoch 100]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from cnnlib.data import DEFAULT_DATA_DIR, RAW_FILES, vendored_file
from cnnlib.model import ACTIVATION_NAMES, CNN

MEAN, STD = 0.1307, 0.3081
TEST_BATCH_SIZE = 64
SAMPLES_PER_DIGIT = 10
FEATURE_MAP_DIGIT = 3


def load_datasets(root: Path) -> tuple[datasets.MNIST, datasets.MNIST]:
    """The seed's datasets: each image decoded and normalized on every access."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    for name in RAW_FILES:  # torchvision reads them uncompressed; extracted once, never downloaded
        extracted = Path(root) / "MNIST" / "raw" / name
        if not extracted.exists():
            extracted.write_bytes(vendored_file(root, name))
    train_set = datasets.MNIST(root, train=True, download=False, transform=transform)
    test_set = datasets.MNIST(root, train=False, download=False, transform=transform)
    return train_set, test_set


def train_epoch(
    model: CNN,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer | None,
    batches_per_epoch: int,
) -> tuple[float, float]:
    """Up to `batches_per_epoch` batches; no update without an optimizer (epoch 0).

    Returns the mean loss and the accuracy (percent) over those batches.
    """
    model.train(optimizer is not None)
    total_loss, correct, seen, batches = 0.0, 0, 0, 0
    for batch_number, (images, labels) in enumerate(loader):
        if batch_number >= batches_per_epoch:
            break
        with torch.set_grad_enabled(optimizer is not None):
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        total_loss += loss.item()
        correct += (logits.argmax(dim=1) == labels).sum().item()
        seen += len(labels)
        batches += 1
    return total_loss / batches, 100.0 * correct / seen


def evaluate(model: CNN, loader: DataLoader) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (percent) over the whole test set."""
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
    count = len(loader.dataset)
    return total_loss / count, 100.0 * correct / count


def collect_samples(test_set: Dataset) -> list[dict]:
    """The first 10 test images of each digit: one walk over the whole test set per digit."""
    samples = []
    for digit in range(10):
        found = 0
        for index in range(len(test_set)):
            image, label = test_set[index]
            if label == digit and found < SAMPLES_PER_DIGIT:
                pixels = image[0] * STD + MEAN  # denormalized: back to 0..1
                samples.append({"image": pixels.tolist(), "label": label, "index": index})
                found += 1
    return samples


def find_feature_map_image(test_set: Dataset) -> tuple[int, torch.Tensor]:
    """The first test image of the digit 3, found by walking the test set."""
    for index in range(len(test_set)):
        image, label = test_set[index]
        if label == FEATURE_MAP_DIGIT:
            return index, image
    raise LookupError(f"no {FEATURE_MAP_DIGIT} in the test set")


def feature_maps(model: CNN, image: torch.Tensor) -> dict[str, list]:
    model.eval()
    with torch.no_grad():
        activations = model.activations(image.unsqueeze(0))
    return {name: activations[name][0].tolist() for name in ACTIVATION_NAMES}


def weights_to_lists(model: CNN) -> dict[str, dict[str, list]]:
    """{'conv1': {'weight': [...], 'bias': [...]}, ...} as nested Python floats."""
    layers: dict[str, dict[str, list]] = {}
    for key, tensor in model.state_dict().items():
        layer, kind = key.split(".")
        layers.setdefault(layer, {})[kind] = tensor.tolist()
    return layers


def architecture(model: CNN) -> dict[str, object]:
    with torch.no_grad():
        activations = model.activations(torch.zeros(1, 1, 28, 28))
    return {
        "input_shape": [1, 28, 28],
        **{name: {"output_shape": list(activations[name].shape[1:])} for name in ACTIVATION_NAMES},
        "output": {"classes": model.fc2.out_features},
    }


def model_architecture(model: CNN) -> dict[str, str]:
    return {name: repr(layer) for name, layer in model.named_children()}


def run(args: argparse.Namespace, train_set: Dataset, test_set: Dataset) -> float:
    """Train, snapshot every epoch, write the JSON; return the final test accuracy."""
    torch.manual_seed(args.seed)
    out = Path(args.out)
    (out / "epoch_weights").mkdir(parents=True, exist_ok=True)

    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=TEST_BATCH_SIZE, shuffle=False)
    samples = collect_samples(test_set)

    model = CNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    epochs = []
    for epoch in range(args.epochs + 1):
        loss, train_accuracy = train_epoch(
            model, train_loader, optimizer if epoch > 0 else None, args.batches_per_epoch
        )
        test_loss, test_accuracy = evaluate(model, test_loader)
        torch.save(model.state_dict(), out / "epoch_weights" / f"epoch_{epoch}_weights.pth")
        image_index, image = find_feature_map_image(test_set)
        epochs.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_accuracy": train_accuracy,
                "test_accuracy": test_accuracy,
                "test_loss": test_loss,
                "feature_maps": feature_maps(model, image),
                "weights": weights_to_lists(model),
            }
        )
        if not args.quiet:
            print(f"epoch {epoch}: loss {loss:.4f}, test accuracy {test_accuracy:.2f}%")

    torch.save(model.state_dict(), out / "final_model_weights.pth")
    payload = {
        "samples": samples,
        "training_epochs": epochs,
        "architecture": architecture(model),
        "model_architecture": model_architecture(model),
        "final_weights": weights_to_lists(model),
        "feature_map_image": {"index": image_index, "label": FEATURE_MAP_DIGIT},
        "metadata": {
            "config": {
                key: getattr(args, key)
                for key in ("epochs", "batches_per_epoch", "batch_size", "lr", "seed")
            },
            "normalization": {"mean": MEAN, "std": STD},
        },
    }
    with open(out / "pretrained_cnn_data.json", "w") as handle:
        json.dump(payload, handle, indent=2)
    return epochs[-1]["test_accuracy"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batches-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_DIR, help="holds MNIST/raw")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    accuracy = run(args, *load_datasets(args.data_root))
    if not args.quiet:
        print(f"final test accuracy: {accuracy:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
