"""The lecture's tools: the notebooks' figures, one function per idea, each returning a matplotlib
Figure (object-oriented API, no pyplot state), grouped by what they draw: the model (01),
training (02), feature maps, the epoch explorer, shifted digits and the feature hierarchy (03),
the export (04); `style` is shared."""

from cnnlib.lecture.plots.explorer import EpochExplorer, show_epoch_explorer, slider_width
from cnnlib.lecture.plots.export import json_sizes, logits_agreement, sample_predictions
from cnnlib.lecture.plots.feature_maps import (
    conv1_filters,
    conv2_filters,
    correlation_matrices,
    every_epoch,
    feature_maps,
    filter_roles,
    layer_changes,
    predictions,
)
from cnnlib.lecture.plots.hierarchy import strongest_digits, strongest_patches
from cnnlib.lecture.plots.model import (
    convolution,
    digit,
    layer_sizes,
    max_pool,
    network,
    parameter_counts,
    receptive_fields,
    translation,
    weight_sharing,
)
from cnnlib.lecture.plots.shifts import shifted_accuracies
from cnnlib.lecture.plots.style import live_frontend, retina_png, use_lecture_style
from cnnlib.lecture.plots.training import (
    confusion_matrices,
    digit_grid,
    hyperparameters,
    overfitting,
    pixel_histograms,
    training_curves,
    weight_changes,
)

__all__ = [
    "EpochExplorer",
    "confusion_matrices",
    "conv1_filters",
    "conv2_filters",
    "convolution",
    "correlation_matrices",
    "digit",
    "digit_grid",
    "every_epoch",
    "feature_maps",
    "filter_roles",
    "hyperparameters",
    "overfitting",
    "json_sizes",
    "layer_changes",
    "layer_sizes",
    "live_frontend",
    "logits_agreement",
    "max_pool",
    "network",
    "parameter_counts",
    "pixel_histograms",
    "predictions",
    "receptive_fields",
    "retina_png",
    "sample_predictions",
    "shifted_accuracies",
    "show_epoch_explorer",
    "slider_width",
    "strongest_digits",
    "strongest_patches",
    "training_curves",
    "translation",
    "use_lecture_style",
    "weight_changes",
    "weight_sharing",
]
