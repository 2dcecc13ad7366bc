"""The lecture's half of cnnlib (the factory's half, cnnlib's top-level modules, makes the
artifacts), and the one surface the notebooks reach cnnlib through, as d2l's notebooks reach d2l:
`from cnnlib import lecture` is a notebook's only cnnlib import, then `lecture.CNN()`,
`lecture.plots.network(...)`, `lecture.experiments.train_model(...)` (tests/test_surface.py holds
the notebooks to it). This table is everything the notebooks use, and nothing else:

    every notebook   setup, check (notebook, claims), CNN, plots
    cnnlib's source  show_source: the model (01), one epoch of training (02), the NumPy forward
                     pass (04)
    data             load_mnist, feature_map_index, normalize, sample_indices, validation_split,
                     MEAN, STD
    the model (01)   count_parameters
    training (02)    TrainConfig, train, write_artifacts, fit, start, run_epoch, shuffles,
                     training_images, snapshot, TRAIN_SIZE
    the set (03, 04) ensure_artifacts, load_state_dict, epoch_weights_name, FINAL_WEIGHTS_NAME,
                     JSON_NAME, json_bytes, dumps_float64, default_min_accuracy, verify,
                     reference (the independent NumPy forward pass)

and the lecture's modules, one job each:

    notebook      what every notebook does first, and cnnlib's source on screen
    claims        the narration's sentences checked against the run's numbers; the predicates
                  live in claims_model (01), claims_training (02), claims_features (03) and
                  claims_export (04), imported here to register them (not on the surface)
    plots         the figures, by what they draw
    convolution   receptive fields and shifted images (why convolution)
    experiments   models trained with the lecture's own loop: a layer frozen, an MLP, a small
                  training set; the images no step drew; shifted digits
    evaluate      looking back at a run: weight changes, confusions, confident mistakes, the
                  standard error of an accuracy
    hyperparams   the grid of short trainings (learning rate x optimizer, batch sizes)
    features      what the filters respond to, how alike their maps are, how far weights moved
    hierarchy     what conv2's channels and fc1's units respond to over the whole test set
    sizes         the bytes a part of the JSON takes, and the float64 text the export avoids
    exercises     checkers for the exercises (01's convolution, 02's gradient and SGD step too)
"""

from cnnlib import reference
from cnnlib.data import (
    MEAN,
    STD,
    feature_map_index,
    load_mnist,
    normalize,
    sample_indices,
    validation_split,
)
from cnnlib.export import (
    FINAL_WEIGHTS_NAME,
    JSON_NAME,
    epoch_weights_name,
    load_state_dict,
)
from cnnlib.lecture import (  # the claims' predicates register themselves on import
    claims_export,  # noqa: F401
    claims_features,  # noqa: F401
    claims_model,  # noqa: F401
    claims_training,  # noqa: F401
    convolution,
    evaluate,
    exercises,
    experiments,
    features,
    hierarchy,
    hyperparams,
    plots,
)
from cnnlib.lecture.claims import check
from cnnlib.lecture.notebook import setup, show_source
from cnnlib.lecture.sizes import dumps_float64, json_bytes
from cnnlib.model import CNN, count_parameters
from cnnlib.pipeline import default_min_accuracy, ensure_artifacts, write_artifacts
from cnnlib.train import (
    TRAIN_SIZE,
    TrainConfig,
    fit,
    run_epoch,
    shuffles,
    snapshot,
    start,
    train,
    training_images,
)
from cnnlib.verify import verify

__all__ = [
    "CNN",
    "FINAL_WEIGHTS_NAME",
    "JSON_NAME",
    "MEAN",
    "STD",
    "TRAIN_SIZE",
    "TrainConfig",
    "check",
    "convolution",
    "count_parameters",
    "default_min_accuracy",
    "dumps_float64",
    "ensure_artifacts",
    "epoch_weights_name",
    "evaluate",
    "exercises",
    "experiments",
    "feature_map_index",
    "features",
    "fit",
    "hierarchy",
    "hyperparams",
    "json_bytes",
    "load_mnist",
    "load_state_dict",
    "normalize",
    "plots",
    "reference",
    "run_epoch",
    "sample_indices",
    "setup",
    "show_source",
    "shuffles",
    "snapshot",
    "start",
    "train",
    "training_images",
    "validation_split",
    "verify",
    "write_artifacts",
]
