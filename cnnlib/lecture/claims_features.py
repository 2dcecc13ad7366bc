"""The lecture's tools: the predicates behind notebook 03's checked sentences (see `claims`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnnlib.lecture.claims import Verdict, claim, rounded
from cnnlib.lecture.evaluate import standard_error
from cnnlib.lecture.features import Drift, FilterSummary, Gain

CLEAR_GAIN = 0.05  # a change of |r| that counts as "clearly closer": well beyond the noise of a
# mean over 1,000 digits (its standard error is about 0.001 to 0.003), and visible on the maps


def _jobs(summaries: Sequence[FilterSummary]) -> list[tuple[str, str]]:
    """What each filter's map follows: (reference, "+" or "-")."""
    return [(s.best, "+" if s.r[s.best] > 0 else "-") for s in summaries]


@claim("kernels-kept", general=False)
def kernels_kept(drift: Sequence[Drift]) -> Verdict:
    cosines, scales = [d.cosine for d in drift], [d.scale for d in drift]
    return Verdict(
        all(cosine > 0.75 for cosine in cosines) and all(scale > 1.2 for scale in scales),
        f"cosines {rounded(cosines)}, scales {rounded(scales)}",
    )


@claim("filter-jobs", general=False)
def filter_jobs(summaries: Sequence[FilterSummary]) -> Verdict:
    jobs = _jobs(summaries)
    expected = [("horizontal edge", "+"), ("stroke", "+"), ("stroke", "+"), ("stroke", "-")]
    return Verdict(sorted(jobs) == expected, f"the filters follow {list(jobs)}")


@claim("filter-close", general=False)
def filter_close(summaries: Sequence[FilterSummary]) -> Verdict:
    r = [s.r[s.best] for s in summaries]
    return Verdict(all(abs(value) > 0.85 for value in r), f"|r| = {rounded([abs(v) for v in r])}")


@claim("no-vertical", general=False)
def no_vertical(summaries: Sequence[FilterSummary]) -> Verdict:
    r = [s.r["vertical edge"] for s in summaries]
    return Verdict(all(abs(value) < 0.4 for value in r), f"r with vertical edges {rounded(r)}")


@claim("jobs-at-start", general=False)
def jobs_at_start(start: Sequence[FilterSummary], end: Sequence[FilterSummary]) -> Verdict:
    return Verdict(_jobs(start) == _jobs(end), f"epoch 0: {_jobs(start)}; the end: {_jobs(end)}")


@claim("random-kernels")
def random_kernels(rates: Mapping[str, float]) -> Verdict:
    """`rates`: for random kernels by |sum of weights| band, the share of kernel-digit pairs
    whose map follows the stroke with the sum's sign (`features.stroke_rates`)."""
    low, middle, high = (rates[band] for band in ("below 0.3", "0.3 to 0.5", "0.5 or more"))
    return Verdict(
        high > 0.99 and 0.5 < middle < high - 0.05 and low < 0.5,
        f"share of pairs following the stroke, by |sum|: "
        f"{ {band: f'{rate:.1%}' for band, rate in rates.items()} }",
    )


@claim("closer", general=False)
def closer(gains: Sequence[Gain]) -> Verdict:
    """`gains`: each filter's mean |r| with its final pattern at the start and at the end, over
    the same digits. Two clearly closer (by CLEAR_GAIN, and 3 standard errors), two within it."""
    clear = sum(g.change > CLEAR_GAIN and g.change > 3 * g.error for g in gains)
    kept = sum(abs(g.change) < CLEAR_GAIN for g in gains)
    return Verdict(
        clear == 2 and kept == len(gains) - 2,
        f"mean |r| from {rounded([g.start for g in gains])} to {rounded([g.end for g in gains])}"
        f": {clear} clearly closer, {kept} within {CLEAR_GAIN}",
    )


@claim("more-alike", general=False)
def more_alike(pairs: Mapping[tuple[int, int], tuple[float, float]]) -> Verdict:
    start, end = [a for a, _ in pairs.values()], [b for _, b in pairs.values()]
    return Verdict(
        bool(end) and all(b >= 0.95 and b > a for a, b in zip(start, end, strict=True)),
        f"|r| of the pairs from {rounded(start)} to {rounded(end)}",
    )


@claim("pool1-opposites", general=False)
def pool1_opposites(r: Sequence[float]) -> Verdict:
    return Verdict(bool(r) and all(value < -0.8 for value in r), f"r = {rounded(r)}")


@claim("outputs-drift", general=False)
def outputs_drift(r: Mapping[str, float]) -> Verdict:
    depth = ["conv1", "conv2", "pool2", "fc1", "logits"]
    return Verdict(
        all(r[a] > r[b] for a, b in zip(depth, depth[1:], strict=False))
        and r["conv1"] > 0.85
        and abs(r["logits"]) < 0.5,
        f"r { {layer: round(value, 2) for layer, value in r.items()} }",
    )


@claim("conv1-maps-kept", general=False)
def conv1_maps_kept(r: Sequence[float], growth: float) -> Verdict:
    return Verdict(
        all(value > 0.8 for value in r) and 1.5 <= growth <= 3,
        f"r {rounded(r)}, largest value grows {growth:.2f}×",
    )


@claim("conv2-changes", general=False)
def conv2_changes(conv1: float, conv2: float) -> Verdict:
    return Verdict(conv2 < conv1 - 0.1, f"mean r: conv1 {conv1:.2f}, conv2 {conv2:.2f}")


@claim("fc1-silent")
def fc1_silent(silent: Sequence[int]) -> Verdict:
    start, end = silent
    return Verdict(
        min(silent) >= 32 and max(silent) <= 96 and abs(start - end) <= 16,
        f"silent units at epoch 0 and at the end: {start}, {end} of 128",
    )


@claim("fc1-stronger")
def fc1_stronger(strongest: Sequence[float]) -> Verdict:
    start, end = strongest
    return Verdict(
        end > 5 * start, f"the strongest unit: {start:.2f} at epoch 0, {end:.2f} at the end"
    )


@claim("confident-mistake", general=False)
def confident_mistake(probabilities: Sequence[float], label: int) -> Verdict:
    """`probabilities`: the final network's ten probabilities for the lecture's digit."""
    guess = max(range(len(probabilities)), key=probabilities.__getitem__)
    return Verdict(
        guess != label and probabilities[guess] > 0.8 and probabilities[label] < 0.2,
        f"it answers {guess} with {probabilities[guess]:.0%}; {label} gets "
        f"{probabilities[label]:.0%}",
    )


@claim("on-the-border", general=False)
def on_the_border(r: Mapping[int, float]) -> Verdict:
    """`r`: the digit's fc1 pattern against the mean pattern of each of two digits' test
    images; one digit only when the network reads the digit right (another seed)."""
    if len(r) < 2:
        return Verdict(False, f"the network reads the digit right: {next(iter(r))}")
    (a, r_a), (b, r_b) = r.items()
    return Verdict(
        abs(r_a - r_b) < 0.1, f"r with the average {a}: {r_a:.2f}, with the average {b}: {r_b:.2f}"
    )


def _shifts(cnn: Mapping[int, float], mlp: Mapping[int, float]) -> str:
    return f"CNN {rounded(list(cnn.values()), 1)}, MLP {rounded(list(mlp.values()), 1)}"


@claim("shift-cnn-better")
def shift_cnn_better(cnn: Mapping[int, float], mlp: Mapping[int, float]) -> Verdict:
    """Accuracies (percent) on the 10,000 shifted test digits; more by two standard errors."""
    return Verdict(
        all(cnn[s] > mlp[s] + 2 * standard_error(mlp[s], 10_000) for s in cnn if s > 0),
        _shifts(cnn, mlp),
    )


@claim("shift-gap-grows")
def shift_gap_grows(cnn: Mapping[int, float], mlp: Mapping[int, float]) -> Verdict:
    gaps = {s: cnn[s] - mlp[s] for s in cnn}
    return Verdict(
        gaps[1] < 10 and gaps[3] > 20 and gaps[4] > 20,
        f"gaps {rounded(list(gaps.values()), 1)}; {_shifts(cnn, mlp)}",
    )


@claim("shift-not-invariant")
def shift_not_invariant(cnn: Mapping[int, float]) -> Verdict:
    return Verdict(cnn[0] - cnn[max(cnn)] > 20, f"CNN {rounded(list(cnn.values()), 1)}")


@claim("settle-order")
def settle_order(settled: Mapping[str, Sequence[float]]) -> Verdict:
    """`settled`: each layer's r with its final output, after epoch 1 and halfway."""
    return Verdict(
        settled["conv1"][0] >= 0.9 and settled["fc1"][1] < settled["conv1"][1] - 0.05,
        f"r with the last epoch at epoch 1 and halfway: "
        f"{ {name: rounded(values) for name, values in settled.items()} }",
    )


@claim("wobbles", general=False)
def wobbles(probabilities: Sequence[float]) -> Verdict:
    """`probabilities`: the right digit's probability after epochs 1, 2, ..."""
    if len(probabilities) < 2:  # a run of one epoch (make data PARAMS="-p epochs 1")
        return Verdict(False, f"{len(probabilities)} epoch: no change between epochs to see")
    falls = [a - b for a, b in zip(probabilities, probabilities[1:], strict=False) if b < a]
    large = sum(fall > 0.1 for fall in falls)
    return Verdict(
        len(falls) >= len(probabilities) // 3
        and large > len(falls) / 2
        and probabilities[-2] > 0.85
        and probabilities[-1] < 0.2,
        f"{len(falls)} falls in {len(probabilities) - 1} epochs, {large} by more than 10 points; "
        f"the last from {probabilities[-2]:.0%} to {probabilities[-1]:.0%}",
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@claim("patches-shared")
def patches_shared(conv2: Sequence[int], random: Sequence[int]) -> Verdict:
    """`conv2`: for each conv2 channel, how many different digits its 8 strongest patches come
    from; `random`: the same count for many draws of 8 random test digits (the baseline). Several
    (3 or more on average), yet fewer than random by two standard errors of the mean."""
    spread = (sum((x - _mean(random)) ** 2 for x in random) / (len(random) - 1)) ** 0.5
    margin = 2 * spread / len(conv2) ** 0.5
    return Verdict(
        _mean(conv2) >= 3 and _mean(conv2) < _mean(random) - margin,
        f"conv2's channels: {_mean(conv2):.2f} different digits on average ({list(conv2)}); "
        f"8 random digits: {_mean(random):.2f} (margin {margin:.2f})",
    )


@claim("units-one-digit")
def units_one_digit(
    fc1_shares: Sequence[float], fc1: Sequence[int], conv2: Sequence[int]
) -> Verdict:
    """Over all fc1 units that respond at all: `fc1_shares`, the share of each unit's 8 strongest
    digits that carry its most common label; `fc1` and `conv2`, how many different digits the
    8 come from, for each unit and for each conv2 channel."""
    mostly = sum(share > 0.5 for share in fc1_shares) / len(fc1_shares)
    return Verdict(
        mostly > 0.5 and _mean(fc1) < _mean(conv2) - 1,
        f"{mostly:.0%} of {len(fc1_shares)} units: mostly one digit; different digits among the 8: "
        f"fc1 {_mean(fc1):.2f}, conv2 {_mean(conv2):.2f} on average",
    )
