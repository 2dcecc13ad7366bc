"""The factory, for verify: a forward pass in plain NumPy from the JSON's nested lists, sharing no
code with the PyTorch model (so agreeing with it is evidence), as a JavaScript port computes it."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlib.data import MEAN, STD


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels [N, 28, 28] -> normalized images [N, 1, 28, 28], as the demo does it."""
    return ((np.asarray(pixels, dtype=np.float64) / 255.0 - MEAN) / STD)[:, None]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid 2-D convolution, stride 1: x [N, C, H, W], weight [O, C, k, k] -> [N, O, H-2, W-2]."""
    k = weight.shape[-1]
    windows = sliding_window_view(x, (k, k), axis=(2, 3))  # [N, C, H', W', k, k]
    n, _, height, width = windows.shape[:4]
    # [N, H', W', C*k*k]: one dot product per window
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n, height, width, -1)
    out = patches @ weight.reshape(len(weight), -1).T + bias
    return out.transpose(0, 3, 1, 2)  # [N, O, H', W']


def max_pool_2x2(x: np.ndarray) -> np.ndarray:
    """2x2 max-pool, stride 2; an odd last row or column is dropped, as PyTorch does."""
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def forward(weights: dict, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Activations (conv1 and conv2 before ReLU, as the demo draws them) and logits, from the
    JSON's {'conv1': {'weight': ..., 'bias': ...}, ...} and uint8 `pixels` [N, 28, 28]."""
    w = {
        layer: {kind: np.asarray(values, dtype=np.float64) for kind, values in params.items()}
        for layer, params in weights.items()
    }
    conv1 = conv2d(preprocess(pixels), w["conv1"]["weight"], w["conv1"]["bias"])
    pool1 = max_pool_2x2(relu(conv1))
    conv2 = conv2d(pool1, w["conv2"]["weight"], w["conv2"]["bias"])
    pool2 = max_pool_2x2(relu(conv2))
    fc1 = relu(pool2.reshape(len(pool2), -1) @ w["fc1"]["weight"].T + w["fc1"]["bias"])
    logits = fc1 @ w["fc2"]["weight"].T + w["fc2"]["bias"]
    return dict(conv1=conv1, pool1=pool1, conv2=conv2, pool2=pool2, fc1=fc1, logits=logits)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
