"""The factory, stage 2, model: the small CNN that the browser demo runs, in plain PyTorch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The activations the demo draws, in the order the image flows through them.
ACTIVATION_NAMES = ("conv1", "pool1", "conv2", "pool2", "fc1")


class CNN(nn.Module):
    """conv 1->4 (3x3), pool, conv 4->8 (3x3), pool, fully connected 200->128->10.

    Shapes for one 28x28 digit:
        input [1, 28, 28] -> conv1 [4, 26, 26] -> pool1 [4, 13, 13]
        -> conv2 [8, 11, 11] -> pool2 [8, 5, 5] -> flatten [200] -> fc1 [128] -> fc2 [10]
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=4, kernel_size=3)
        self.pool1 = nn.MaxPool2d(kernel_size=2)
        self.conv2 = nn.Conv2d(in_channels=4, out_channels=8, kernel_size=3)
        self.pool2 = nn.MaxPool2d(kernel_size=2)
        self.fc1 = nn.Linear(in_features=8 * 5 * 5, out_features=128)
        self.fc2 = nn.Linear(in_features=128, out_features=10)

    def activations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate result the demo draws, plus the logits, for a batch [N, 1, 28, 28]."""
        conv1 = self.conv1(x)  # before ReLU: the raw filter responses
        pool1 = self.pool1(F.relu(conv1))
        conv2 = self.conv2(pool1)  # before ReLU
        pool2 = self.pool2(F.relu(conv2))
        fc1 = F.relu(self.fc1(pool2.flatten(start_dim=1)))
        logits = self.fc2(fc1)
        return {
            "conv1": conv1,
            "pool1": pool1,
            "conv2": conv2,
            "pool2": pool2,
            "fc1": fc1,
            "logits": logits,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (logits) [N, 10] for a batch of normalized images [N, 1, 28, 28]."""
        return self.activations(x)["logits"]


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per layer (weights and biases together), in layer order."""
    counts: dict[str, int] = {}
    for name, tensor in model.named_parameters():
        layer = name.split(".")[0]
        counts[layer] = counts.get(layer, 0) + tensor.numel()
    return counts
