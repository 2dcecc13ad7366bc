"""How fast notebook 03's epoch slider redraws: the time from a new slider value to the new PNG.

    PYTHONPATH=$PWD .venv/bin/python bench/slider.py            # the lecture's run, from data/

It builds `cnnlib.lecture.plots.EpochExplorer` for the digit of notebook 03 from the weight
snapshots in data/ (trained first if missing, as the notebook does), then moves its slider to every
epoch once (a first visit: the figure's data are replaced in place and the changed parts redrawn)
and once more (a revisit: the PNG is reused), and times rendering every epoch ahead, which the
notebook does in the background once the slider is shown. It prints the build time, the median and
the slowest redraw against the 0.3 s target, the slider's width per epoch, and the load average,
since a busy machine slows every number here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import cnnlib
from cnnlib.data import feature_map_index
from cnnlib.export import epoch_weights_name
from cnnlib.lecture import plots

TARGET_S = 0.3  # issue 8: moving the slider redraws in under 0.3 s
MIN_PX_PER_EPOCH = 15  # one step wide enough to land on with the mouse


def activations_by_epoch(out_dir: Path) -> tuple[torch.Tensor, dict, int]:
    """Notebook 03's digit and its activations under every snapshot."""
    config = cnnlib.TrainConfig()
    cnnlib.ensure_artifacts(config, out_dir, progress=False)
    data = cnnlib.load_mnist()
    index = feature_map_index(data.test_labels)
    image, label = data.test_images[index], int(data.test_labels[index])
    model = cnnlib.CNN().eval()
    activations = {}
    for epoch in range(config.epochs + 1):
        model.load_state_dict(cnnlib.load_state_dict(out_dir / epoch_weights_name(epoch)))
        with torch.inference_mode():
            batch = model.activations(image.unsqueeze(0))
        activations[epoch] = {name: values[0] for name, values in batch.items()}
    return image, activations, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("data"), help="the artifacts")
    args = parser.parse_args()
    image, activations, label = activations_by_epoch(args.out_dir)

    plots.use_lecture_style()
    start = time.perf_counter()
    explorer = plots.EpochExplorer(image, activations, label)
    slider, picture = explorer.widget(ahead=False).children  # renders the last epoch only
    built = time.perf_counter() - start

    def move(epoch: int) -> float:
        start = time.perf_counter()
        slider.value = epoch
        return time.perf_counter() - start

    epochs = [epoch for epoch in explorer.epochs if epoch != slider.value]
    first = [move(epoch) for epoch in epochs]
    again = [move(epoch) for epoch in epochs]
    fresh = plots.EpochExplorer(image, activations, label)
    start = time.perf_counter()
    fresh.render_all()  # what the notebook does in the background after showing the slider
    ahead = time.perf_counter() - start

    steps = slider.max - slider.min
    width = int(slider.layout.width.removesuffix("px"))
    per_epoch = (width - 160) / steps  # minus the label and the readout beside the track
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print(f"build (figure, layout, background, first PNG): {built:.2f} s")
    print(
        f"redraw, first visit of an epoch ({len(first)}): median {statistics.median(first):.3f} s, "
        f"slowest {max(first):.3f} s  (target < {TARGET_S} s: "
        f"{'ok' if max(first) < TARGET_S else 'MISSED'})"
    )
    print(f"redraw, revisit: median {statistics.median(again) * 1000:.2f} ms")
    print(f"rendering all {len(fresh.epochs)} epochs ahead (in the background): {ahead:.2f} s")
    print(f"PNG: {len(bytes(picture.value)) / 1e3:.0f} kB, {plots.EXPLORER_DPI} dpi")
    print(
        f"slider: {width} px for {steps} steps, about {per_epoch:.0f} px per epoch "
        f"(target >= {MIN_PX_PER_EPOCH}: {'ok' if per_epoch >= MIN_PX_PER_EPOCH else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
