"""The lecture's half of cnnlib: the tools the notebooks use to show and explain the network
(the factory's half, cnnlib's top-level modules, makes the artifacts).

    notebook      what every notebook does first, and cnnlib's source on screen
    claims        the narration's sentences checked against the run's numbers; the predicates
                  live in claims_model (01), claims_training (02), claims_features (03) and
                  claims_export (04)
    plots         the figures, by what they draw
    convolution   receptive fields and shifted images (why convolution)
    features      what the filters respond to, how alike their maps are
    evaluate      looking back at a run: weight changes, confusions, confident mistakes
    experiments   models trained the lecture's way: a layer frozen, an MLP, shifted digits
    exercises     checkers for the exercises

`from cnnlib import lecture` gives a notebook its everyday calls: `lecture.setup`,
`lecture.check` and `lecture.show_source`.
"""

from cnnlib.lecture import claims_export, claims_features, claims_model, claims_training
from cnnlib.lecture.claims import (
    RECORD_ENV,
    STRICT_ENV,
    ClaimError,
    check,
    is_lecture_default,
    strict,
)
from cnnlib.lecture.notebook import setup, show_source

__all__ = [
    "RECORD_ENV",
    "STRICT_ENV",
    "ClaimError",
    "check",
    "claims_export",
    "claims_features",
    "claims_model",
    "claims_training",
    "is_lecture_default",
    "setup",
    "show_source",
    "strict",
]
