"""The lecture's tools: the predicates behind notebook 03's checked sentences (see `claims`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnnlib.lecture.claims import Verdict, claim, rounded
from cnnlib.lecture.features import Drift, FilterSummary


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


@claim("closer", general=False)
def closer(start: Sequence[FilterSummary], end: Sequence[FilterSummary]) -> Verdict:
    """How closely each filter follows, at the start and at the end, its pattern at the end."""
    start = [abs(a.r[b.best]) for a, b in zip(start, end, strict=True)]
    end = [abs(s.r[s.best]) for s in end]
    better = sum(b > a for a, b in zip(start, end, strict=True))
    return Verdict(
        better > len(start) / 2, f"|r| from {rounded(start)} to {rounded(end)}: {better} closer"
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


@claim("predictions", general=False)
def predictions(top_at_0: float, right: Sequence[float]) -> Verdict:
    return Verdict(
        top_at_0 < 0.2 and right[1] > 0.5 and right[-1] < 0.5,
        f"top probability at epoch 0 {top_at_0:.0%}; right digit {[f'{p:.0%}' for p in right]}",
    )


def _shifts(cnn: Mapping[int, float], mlp: Mapping[int, float]) -> str:
    return f"CNN {rounded(list(cnn.values()), 1)}, MLP {rounded(list(mlp.values()), 1)}"


@claim("shift-cnn-better")
def shift_cnn_better(cnn: Mapping[int, float], mlp: Mapping[int, float]) -> Verdict:
    return Verdict(all(cnn[s] > mlp[s] for s in cnn if s > 0), _shifts(cnn, mlp))


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
    return Verdict(
        settled["conv1"][0] >= 0.95 and settled["fc1"][1] < settled["conv1"][1],
        f"r with the last epoch at epoch 1 and halfway: "
        f"{ {name: rounded(values) for name, values in settled.items()} }",
    )


@claim("wobbles", general=False)
def wobbles(probabilities: Sequence[float]) -> Verdict:
    falls = [a - b for a, b in zip(probabilities, probabilities[1:], strict=False) if b < a]
    return Verdict(
        len(falls) >= 3 and max(falls) > 0.1,
        f"{len(falls)} falls, the largest {max(falls, default=0):.0%}",
    )


@claim("patches-shared")
def patches_shared(distinct: Sequence[int]) -> Verdict:
    """`distinct`: for each conv2 channel, how many different digits its strongest patches
    come from."""
    several = sum(count >= 3 for count in distinct)
    return Verdict(
        several > len(distinct) / 2,
        f"{several} of {len(distinct)} channels have patches from 3 or more different digits "
        f"({list(distinct)})",
    )


@claim("units-one-digit")
def units_one_digit(shares: Mapping[int, float]) -> Verdict:
    """`shares`: for each fc1 unit shown, the share of its top digits that carry one label."""
    mostly = sum(share > 0.5 for share in shares.values())
    return Verdict(
        mostly >= 3,
        f"{mostly} of {len(shares)} units: mostly one digit ({rounded(list(shares.values()))})",
    )
