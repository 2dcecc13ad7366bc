"""The lecture's half of cnnlib: the tools the notebooks use to show and explain the network
(the factory's half, cnnlib's top-level modules, makes the artifacts).

    notebook      what every notebook does first, and cnnlib's source on screen
    claims        the narration's sentences checked against the run's numbers
    plots         the figures, by what they draw
    convolution   receptive fields and shifted images (why convolution)
    features      what the filters respond to, how alike their maps are
    evaluate      looking back at a run: weight changes, confusions, confident mistakes

`from cnnlib import lecture` gives a notebook its three everyday calls: `lecture.setup`,
`lecture.claim` and `lecture.show_source`.
"""

from cnnlib.lecture.claims import STRICT_ENV, ClaimError, claim, is_lecture_default, strict
from cnnlib.lecture.notebook import setup, show_source

__all__ = [
    "STRICT_ENV",
    "ClaimError",
    "claim",
    "is_lecture_default",
    "setup",
    "show_source",
    "strict",
]
