"""The lecture's tools: checkers for the exercises. A student calls one with an answer; it says
right or wrong, with one sentence of why."""

from __future__ import annotations


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Side of a convolution's or pool's output: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _verdict(right: bool, why: str) -> str:
    return f"{'Right' if right else 'Not yet'}: {why}"


def check_output_size(answer: int) -> str:
    """Exercise (01): a 5 x 5 kernel, padding 2, stride 2, on a 28 x 28 image."""
    size = output_size(28, kernel=5, padding=2, stride=2)
    return _verdict(
        answer == size,
        f"(28 + 2·2 − 5) / 2 = 13.5, rounded down to 13, plus 1: {size} × {size}"
        " (PyTorch drops a last window that does not fit).",
    )


def check_conv_parameters(answer: int) -> str:
    """Exercise (01): parameters of nn.Conv2d(4, 16, kernel_size=5)."""
    count = 16 * 4 * 5 * 5 + 16
    return _verdict(
        answer == count,
        f"16 filters × 4 input channels × 5 × 5 weights + 16 biases = {count:,}.",
    )
