"""The lecture's tools: the predicates behind notebook 04's checked sentences (see `claims`)."""

from __future__ import annotations

from collections.abc import Mapping

from cnnlib.lecture.claims import Verdict, claim


@claim("mostly-weights")
def mostly_weights(top_level: Mapping[str, int], per_epoch: Mapping[str, int]) -> Verdict:
    epochs = top_level["training_epochs"] / sum(top_level.values())
    weights = per_epoch["weights"] / top_level["training_epochs"]
    return Verdict(
        epochs > 0.8 and weights > 0.75,
        f"training_epochs {epochs:.0%} of the file, weights {weights:.0%} of it",
    )


@claim("dozen-characters")
def dozen_characters(characters: float) -> Verdict:
    return Verdict(10 <= characters <= 14, f"{characters:.1f} characters per number")


@claim("maps-small")
def maps_small(per_epoch: Mapping[str, int]) -> Verdict:
    return Verdict(
        per_epoch["feature_maps"] < 0.25 * per_epoch["weights"],
        f"{per_epoch['feature_maps']:,} bytes of maps, {per_epoch['weights']:,} of weights",
    )


@claim("shortest-text")
def shortest_text(longer: int, total: int) -> Verdict:
    return Verdict(total > 0 and longer == 0, f"{longer} of {total:,} numbers written longer")


@claim("float64-ratio")
def float64_ratio(ratio: float) -> Verdict:
    return Verdict(1.6 <= ratio < 1.8, f"{ratio:.2f} times as large")
