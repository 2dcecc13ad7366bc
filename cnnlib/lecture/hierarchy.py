"""The lecture's tools, the feature hierarchy in pictures: over the whole test set, the patches that
excite each of conv2's channels most (each cropped to the 10 x 10 pixels that one pool2 unit
sees), and the whole digits that excite a few fc1 units most."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlib.data import normalize
from cnnlib.lecture.convolution import SPATIAL_LAYERS, receptive_field
from cnnlib.model import CNN
from cnnlib.train import EVAL_CHUNK

TOP = 8  # patches or digits shown per channel or unit


@torch.inference_mode()
def dataset_activations(
    model: CNN, pixels: torch.Tensor, layers: Sequence[str] = ("pool2", "fc1")
) -> dict[str, torch.Tensor]:
    """The given layers' outputs for every image of `pixels` (uint8 [N, 28, 28]), computed a chunk
    at a time; only the asked-for layers are kept."""
    model.eval()
    chunks = [model.activations(normalize(chunk)) for chunk in pixels.split(EVAL_CHUNK)]
    return {layer: torch.cat([chunk[layer] for chunk in chunks]) for layer in layers}


@dataclass(frozen=True)
class TopPatches:
    """The images that excite one channel of a layer most, each at its strongest position."""

    layer: str
    channel: int
    images: torch.Tensor  # test-set indices [k], the strongest first
    rows: torch.Tensor  # the position of the unit in the channel's map [k]
    columns: torch.Tensor
    values: torch.Tensor  # the unit's activation [k]
    patches: torch.Tensor  # uint8 [k, h, w]: the input pixels the unit sees


def top_patches(
    model: CNN, maps: torch.Tensor, pixels: torch.Tensor, layer: str = "pool2", k: int = TOP
) -> list[TopPatches]:
    """For each channel of `maps` ([N, C, H, W], `layer`'s output for `pixels`): the k images
    whose strongest unit in that channel is strongest, each with that unit's receptive field cut
    out of the input. Each image counts once per channel (its best position), so the k patches
    come from k different digits."""
    best, where = maps.flatten(start_dim=2).max(dim=2)  # [N, C]: each image's strongest unit
    values, images = best.topk(k, dim=0)  # [k, C]
    width = maps.shape[-1]
    tops = []
    for channel in range(maps.shape[1]):
        chosen = images[:, channel]
        rows, columns = where[chosen, channel] // width, where[chosen, channel] % width
        patches = torch.stack(
            [
                pixels[image][receptive_field(model, layer, int(row), int(column))]
                for image, row, column in zip(chosen, rows, columns, strict=True)
            ]
        )
        tops.append(TopPatches(layer, channel, chosen, rows, columns, values[:, channel], patches))
    return tops


@torch.inference_mode()
def activation_of_patch(model: CNN, patch: torch.Tensor, layer: str) -> torch.Tensor:
    """The network run on a receptive-field patch alone (uint8 [h, w]): `layer`'s output is then
    a single unit per channel, [C], the very value that unit has on the whole image, since
    nothing outside its receptive field can change it. (The layers up to `layer` only, as
    `CNN.activations` chains them: fc1 needs all 200 pool2 numbers.)"""
    x = normalize(patch[None])
    for name in SPATIAL_LAYERS[: SPATIAL_LAYERS.index(layer) + 1]:
        x = getattr(model, name)(F.relu(x) if name.startswith("pool") else x)
    return x[0, :, 0, 0]


def selective_units(fc1: torch.Tensor, count: int = 6) -> list[int]:
    """The `count` fc1 units whose activation varies most over the images ([N, 128]): the ones
    that tell digits apart, in order of unit number."""
    return sorted(fc1.std(dim=0).topk(count).indices.tolist())


def top_images(
    activations: torch.Tensor, units: Sequence[int], k: int = TOP
) -> dict[int, torch.Tensor]:
    """For each unit, the indices of the k images that excite it most ([N, units] activations)."""
    return {unit: activations[:, unit].topk(k).indices for unit in units}


def strongest_per_image(maps: torch.Tensor) -> torch.Tensor:
    """Each image's strongest unit in each channel, [N, C] from maps [N, C, H, W]: how much the
    image excites the channel anywhere."""
    return maps.flatten(start_dim=2).max(dim=2).values


def top_labels(activations: torch.Tensor, labels: torch.Tensor, k: int = TOP) -> torch.Tensor:
    """For each unit of `activations` [N, units], the labels of the k images that excite it
    most: [units, k]."""
    return labels[activations.topk(k, dim=0).indices.T]


def random_labels(labels: torch.Tensor, draws: int, k: int, seed: int) -> torch.Tensor:
    """The labels of k images drawn at random (without replacement), `draws` times: [draws, k].
    The baseline for `top_labels`: what a unit that prefers no digit would show."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack(
        [labels[torch.randperm(len(labels), generator=generator)[:k]] for _ in range(draws)]
    )


def different_digits(rows: torch.Tensor) -> torch.Tensor:
    """How many different labels each row of labels [units, k] holds."""
    return (F.one_hot(rows, 10).sum(dim=1) > 0).sum(dim=1)


def largest_share(rows: torch.Tensor) -> torch.Tensor:
    """For each row of labels [units, k], the share of its most common label."""
    return F.one_hot(rows, 10).sum(dim=1).max(dim=1).values / rows.shape[1]
