"""The lecture's tools: the predicates behind notebook 01's checked sentences (see `claims`)."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlib.lecture.claims import Verdict, claim, rounded

COPY = 0.75  # |r| above this: a map is a close copy of the digit (or of its negative)


@claim("untrained-copies", general=False)
def untrained_copies(r: Sequence[float]) -> Verdict:
    close = [value for value in r if abs(value) > COPY]
    return Verdict(len(close) == 3 and sum(value < 0 for value in close) == 1, f"r = {rounded(r)}")


@claim("untrained-sign")
def untrained_sign(r: Sequence[float], sums: Sequence[float]) -> Verdict:
    clear = [(value, total) for value, total in zip(r, sums, strict=True) if abs(total) > 0.3]
    return Verdict(
        all(value * total > 0 and abs(value) > 0.5 for value, total in clear),
        f"r = {rounded(r)}, kernel sums {rounded(sums)}",
    )


@claim("untrained-guess")
def untrained_guess(probabilities: Sequence[float]) -> Verdict:
    return Verdict(
        min(probabilities) > 0.05 and max(probabilities) < 0.2,
        f"probabilities from {min(probabilities):.1%} to {max(probabilities):.1%}",
    )
