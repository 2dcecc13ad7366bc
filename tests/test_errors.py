"""cnnlib.lecture.evaluate: how much each epoch moved the weights, the confusion matrix, the most
confident mistakes."""

import math

import pytest
import torch
import torch.nn.functional as F

from cnnlib.lecture import evaluate, plots


def snapshots_of(*scales: float) -> list[dict[str, torch.Tensor]]:
    """Snapshots whose every weight is `scale` times one fixed random pattern."""
    pattern = torch.randn(4, 3)
    return [{"a.weight": scale * pattern, "a.bias": torch.zeros(4)} for scale in scales]


def test_weight_changes_are_relative_to_the_weights_before_each_epoch() -> None:
    changes = evaluate.weight_changes(snapshots_of(1.0, 2.0, 2.0, 1.0))
    assert list(changes) == ["a"]  # biases are left out
    assert changes["a"] == pytest.approx([100.0, 0.0, 50.0])


def test_layers_come_in_model_order(short_results) -> None:
    snapshots = [result.state_dict for result in short_results]
    assert evaluate.weight_layers(snapshots[0]) == ["conv1", "conv2", "fc1", "fc2"]
    changes = evaluate.weight_changes(snapshots)
    assert [len(values) for values in changes.values()] == [2, 2, 2, 2]
    assert all(value > 0 for values in changes.values() for value in values)


def test_logits_of_a_snapshot_match_the_training_runs_own_test_accuracy(
    mnist, short_results
) -> None:
    last = short_results[-1]
    logits = evaluate.logits_of(last.state_dict, mnist.test_images)
    assert logits.shape == (10_000, 10)
    correct = (logits.argmax(dim=1) == mnist.test_labels).sum().item()
    assert correct / 100 == pytest.approx(last.test_accuracy)
    loss = F.cross_entropy(logits.double(), mnist.test_labels).item()
    assert loss == pytest.approx(last.test_loss, rel=1e-5)


def test_confusion_matrix_rows_are_true_digits_and_columns_predictions() -> None:
    labels = torch.tensor([3, 3, 5, 5, 5, 9])
    predicted = torch.tensor([3, 5, 5, 3, 5, 4])
    matrix = evaluate.confusion_matrix(predicted, labels)
    assert matrix.shape == (10, 10) and matrix.dtype == torch.long
    assert matrix.sum() == len(labels)
    assert matrix.trace() == 3  # the right answers
    assert (matrix[3, 5], matrix[5, 3], matrix[9, 4], matrix[4, 9]) == (1, 1, 1, 0)


def test_confused_pairs_count_both_directions_most_confused_first() -> None:
    labels = torch.tensor([3, 3, 5, 5, 9, 4, 7, 1])
    predicted = torch.tensor([5, 5, 3, 5, 4, 9, 1, 7])
    pairs = evaluate.confused_pairs(evaluate.confusion_matrix(predicted, labels))
    assert pairs == [(3, 5, 3), (1, 7, 2), (4, 9, 2)]


def test_a_confidence_is_rounded_down_so_it_never_reads_as_certain() -> None:
    assert evaluate.confidence_text(0.99996) == "99.9%"
    assert evaluate.confidence_text(torch.tensor(0.9626)) == "96.2%"
    assert evaluate.confidence_text(1.0) == "100.0%"
    assert evaluate.confidence_text(0.5) == "50.0%"


def test_confident_mistakes_are_wrong_and_sorted_by_confidence() -> None:
    labels = torch.tensor([0, 1, 2, 3])
    logits = torch.full((4, 10), -10.0)
    logits[0, 0] = 10.0  # right
    logits[1, 7] = 2.0  # wrong, unsure (a little above the other nine)
    logits[2, 5] = 10.0  # wrong, sure
    logits[3, 3] = 10.0  # right
    mistakes = evaluate.confident_mistakes(logits, labels, count=5)
    assert mistakes.tolist() == [2, 1]
    assert evaluate.confident_mistakes(logits, labels, count=1).tolist() == [2]
    assert evaluate.confident_mistakes(logits, torch.tensor([0, 7, 5, 3]), count=3).tolist() == []


def test_the_confusion_matrix_of_a_snapshot_counts_every_test_image(mnist, short_results) -> None:
    logits = evaluate.logits_of(short_results[0].state_dict, mnist.test_images)
    matrix = evaluate.confusion_matrix(logits.argmax(dim=1), mnist.test_labels)
    assert matrix.sum(dim=1).tolist() == torch.bincount(mnist.test_labels).tolist()
    assert math.isclose(matrix.trace().item() / 100, short_results[0].test_accuracy)


def test_each_confusion_matrix_has_its_own_scale_and_light_text_on_dark_cells() -> None:
    early = torch.eye(10, dtype=torch.long) * 900
    early[5, 3] = 100
    late = torch.eye(10, dtype=torch.long) * 990
    late[5, 3] = 10
    figure = plots.confusion_matrices({"epoch 1": early, "epoch 20": late})
    left, right = figure.axes[:2]
    assert [image.get_clim() for image in (*left.images, *right.images)] == [(0, 100), (0, 10)]
    texts = {
        (ax.get_title(), text.get_text()): text.get_color()
        for ax in (left, right)
        for text in ax.texts
    }
    assert texts[("epoch 1: 100 mistakes", "100")] == "white"  # the darkest cell
    assert texts[("epoch 20: 10 mistakes", "10")] == "white"  # its own darkest cell
    assert texts[("epoch 1: 100 mistakes", "900")] == "black"  # the diagonal, on gray
    assert len(left.texts) == 11  # the ten right answers and the one mistake; no zeros written


def test_training_curves_show_the_loss_on_a_log_axis_and_zoom_the_accuracy(short_results) -> None:
    figure = plots.training_curves(short_results)
    loss_ax, accuracy_ax = figure.axes[:2]
    assert loss_ax.get_yscale() == "log"
    lowest, top = accuracy_ax.get_ylim()
    assert top == 100 and lowest <= min(r.test_accuracy for r in short_results[1:])
    assert loss_ax.get_legend() is not None and accuracy_ax.get_legend() is not None
