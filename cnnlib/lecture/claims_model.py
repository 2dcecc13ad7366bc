"""The lecture's tools: the predicates behind notebook 01's checked sentences (see `claims`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnnlib.lecture.claims import Verdict, claim, rounded

COPY = 0.75  # |r| above this: a map is a close copy of the digit (or of its negative)


@claim("init-shrinks")
def init_shrinks(scales: Mapping[str, float]) -> Verdict:
    """Each layer's output scale at least a tenth below the one before, the logits' below a fifth
    of the input's: a shrinking that a variance-preserving start would not show."""
    values = list(scales.values())
    steps = [after / before for before, after in zip(values, values[1:], strict=False)]
    return Verdict(
        all(step < 0.9 for step in steps) and values[-1] < 0.2 * values[0],
        f"scales {dict(zip(scales, rounded(values), strict=True))}",
    )


@claim("untrained-copies", general=False)
def untrained_copies(r: Sequence[float]) -> Verdict:
    close = [value for value in r if abs(value) > COPY]
    return Verdict(len(close) == 3 and sum(value < 0 for value in close) == 1, f"r = {rounded(r)}")


@claim("untrained-sign")
def untrained_sign(clear_share: float, clear: float, cancel: float) -> Verdict:
    """About 6 in 10 random kernels sum to 0.3 or more in size; about 9 in 10 of their (kernel,
    digit) pairs give a copy of the sum's sign, against fewer than 1 in 7 for the kernels whose
    weights nearly cancel: the baseline that shows the sum is what matters. The bounds hold for
    seeds 0-39 (0.57-0.65, 0.885-0.918, 0.03-0.11)."""
    return Verdict(
        0.54 <= clear_share <= 0.68 and 0.85 <= clear <= 0.95 and cancel < 1 / 7,
        f"{clear_share:.1%} of the kernels with a clear sum; copies: {clear:.1%} of their pairs,"
        f" {cancel:.1%} of the pairs of kernels with a sum near 0",
    )


@claim("untrained-guess")
def untrained_guess(probabilities: Sequence[float]) -> Verdict:
    return Verdict(
        min(probabilities) > 0.05 and max(probabilities) < 0.2,
        f"probabilities from {min(probabilities):.1%} to {max(probabilities):.1%}",
    )
