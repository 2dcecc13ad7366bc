"""Training: real epoch-0 metrics, one snapshot per epoch, and the same bytes for the same seed."""

import dataclasses
import json
import math

import pytest
import torch

from cnnlib.data import VALIDATION_SIZE, normalize, validation_split
from cnnlib.export import JSON_NAME, epoch_weights_name, load_state_dict
from cnnlib.model import CNN
from cnnlib.train import (
    ConfigError,
    Evaluator,
    TrainConfig,
    evaluate,
    predict,
    resolve_device,
    scores,
    single_threaded,
    train,
)
from tests.conftest import SHORT, publish_unverified


def test_one_result_per_epoch_from_the_untrained_model_on(short_results):
    assert [result.epoch for result in short_results] == [0, 1, 2]
    assert all(len(result.state_dict) == 8 for result in short_results)


def test_epoch_zero_is_measured_for_real(short_results):
    untrained = short_results[0]
    # an untrained 10-way classifier: loss near ln(10), accuracy near chance
    assert abs(untrained.loss - math.log(10)) < 0.2
    assert abs(untrained.test_loss - math.log(10)) < 0.2
    assert 0 < untrained.train_accuracy < 30 and 0 < untrained.test_accuracy < 30
    assert untrained.loss != 999.999 and untrained.test_accuracy != 10.0


def test_training_moves_the_weights_and_lowers_the_loss(short_results):
    first, last = short_results[0], short_results[-1]
    assert not torch.equal(first.state_dict["conv1.weight"], last.state_dict["conv1.weight"])
    assert last.loss < first.loss and last.test_loss < first.test_loss
    assert last.test_accuracy > first.test_accuracy


def test_accuracies_are_percentages_of_whole_images(short_results):
    for result in short_results:
        assert 0 <= result.train_accuracy <= 100 and 0 <= result.test_accuracy <= 100
        assert (result.test_accuracy * 100) == pytest.approx(round(result.test_accuracy * 100))
        seen = SHORT.batches_per_epoch * SHORT.batch_size
        assert result.train_accuracy * seen / 100 == pytest.approx(
            round(result.train_accuracy * seen / 100)
        )


def test_same_seed_gives_byte_identical_json_and_equal_tensors(mnist, short_run, tmp_path):
    first = short_run  # SHORT's session training, written
    second = publish_unverified(train(SHORT, mnist, progress=False), mnist, SHORT, tmp_path / "2")
    assert (first / JSON_NAME).read_bytes() == (second / JSON_NAME).read_bytes()
    for epoch in range(SHORT.epochs + 1):
        one = load_state_dict(first / epoch_weights_name(epoch))
        two = load_state_dict(second / epoch_weights_name(epoch))
        assert one.keys() == two.keys()
        assert all(torch.equal(one[key], two[key]) for key in one)


def test_the_validation_set_is_5000_training_images_fixed_whatever_the_seed(mnist):
    trained_on, held_out = validation_split(60_000)
    assert len(held_out) == VALIDATION_SIZE == 5_000 and len(trained_on) == 55_000
    assert not set(trained_on.tolist()) & set(held_out.tolist())
    assert torch.equal(validation_split(60_000)[1], held_out)  # no global random state involved
    assert held_out.tolist() != list(range(55_000, 60_000))  # a seeded choice, not the file's end
    shares = torch.bincount(mnist.train_labels[held_out], minlength=10) / VALIDATION_SIZE
    assert shares.min() > 0.08 and shares.max() < 0.12  # every digit in about its usual share


def test_training_never_reads_the_validation_images(mnist, short_results):
    _, held_out = validation_split(60_000)
    pixels, labels = mnist.train_pixels.clone(), mnist.train_labels.clone()
    pixels[held_out] = 255 - pixels[held_out]
    labels[held_out] = (labels[held_out] + 1) % 10
    spoiled = train(
        SHORT, dataclasses.replace(mnist, train_pixels=pixels, train_labels=labels), False
    )
    for ours, theirs in zip(short_results, spoiled, strict=True):
        assert (ours.loss, ours.train_accuracy, ours.test_accuracy) == (
            theirs.loss,
            theirs.train_accuracy,
            theirs.test_accuracy,
        )
        assert all(torch.equal(ours.state_dict[k], theirs.state_dict[k]) for k in ours.state_dict)
        assert ours.validation_accuracy != theirs.validation_accuracy  # but it is evaluated on them


def test_validation_metrics_are_whole_images_of_the_held_out_5000(short_results):
    for result in short_results:
        assert 0 <= result.validation_accuracy <= 100 and result.validation_loss > 0
        right = result.validation_accuracy * VALIDATION_SIZE / 100
        assert right == pytest.approx(round(right))
    assert short_results[-1].validation_loss < short_results[0].validation_loss


def test_pixels_stay_bytes_and_are_normalized_when_looked_at(mnist):
    assert mnist.train_pixels.dtype == torch.uint8
    assert mnist.train_pixels.shape == (60_000, 28, 28)
    assert torch.equal(mnist.train_images[:64], normalize(mnist.train_pixels[:64]))
    assert torch.equal(mnist.test_images[-64:], normalize(mnist.test_pixels[-64:]))


def test_the_evaluation_thread_gives_what_predicting_in_line_gives(mnist, short_results):
    model = CNN()
    model.load_state_dict(short_results[-1].state_dict)
    pixels = mnist.test_pixels[:1000]
    evaluator = Evaluator(model, {"a": pixels, "b": pixels[:300]})
    try:
        in_thread = [evaluator.submit(result.state_dict) for result in short_results]
        in_thread = [future.result() for future in in_thread]
    finally:
        evaluator.close()
    with single_threaded():
        for result, logits in zip(short_results, in_thread, strict=True):
            model.load_state_dict(result.state_dict)
            assert torch.equal(logits["a"], predict(model, pixels))
            assert torch.equal(logits["b"], predict(model, pixels[:300]))


def test_each_epochs_test_metrics_are_those_of_its_test_logits_and_weights(mnist, short_results):
    model = CNN()
    for result in short_results:
        model.load_state_dict(result.state_dict)
        assert torch.equal(result.test_logits, predict(model, mnist.test_pixels))
        metrics = (result.test_loss, result.test_accuracy)
        assert scores(result.test_logits, mnist.test_labels) == metrics
        assert evaluate(model, mnist.test_pixels, mnist.test_labels) == metrics


def test_single_threaded_gives_the_thread_count_back():
    before = torch.get_num_threads()  # one thread in a pytest-xdist worker (see conftest.py)
    torch.set_num_threads(2)
    try:
        with single_threaded():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_another_seed_gives_other_weights(mnist, short_results):
    other = train(TrainConfig(epochs=0, batches_per_epoch=1, seed=7), mnist, progress=False)
    assert not torch.equal(
        other[0].state_dict["fc1.weight"], short_results[0].state_dict["fc1.weight"]
    )


def test_defaults_are_the_seed_scripts():
    config = TrainConfig()
    assert (config.epochs, config.batches_per_epoch, config.batch_size) == (20, 100, 64)
    assert (config.lr, config.seed, config.device) == (1e-3, 42, "auto")
    assert json.loads(json.dumps(config.as_dict()))["lr"] == 0.001


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": -1}, "epochs must be an integer >= 0, got -1"),
        ({"epochs": 2.5}, "epochs must be an integer >= 0, got 2.5"),
        ({"batches_per_epoch": 0}, "batches_per_epoch must be an integer >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"seed": -5}, "seed must be an integer >= 0, got -5"),
        ({"lr": 0.0}, "lr must be a positive finite number, got 0.0"),
        ({"lr": float("nan")}, "lr must be a positive finite number, got nan"),
        ({"lr": "fast"}, "lr must be a positive finite number, got 'fast'"),
        ({"device": "tpu"}, "device must be one of auto, cpu, cuda, got 'tpu'"),
        ({"batches_per_epoch": 1000}, "batches_per_epoch * batch_size must be at most 55000"),
    ],
)
def test_bad_configuration_is_refused_with_a_message_naming_the_parameter(changes, message):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**changes)
    assert message in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_where_there_is_none_is_refused():
    with pytest.raises(ConfigError, match="device 'cuda' was asked for but CUDA is not available"):
        TrainConfig(device="cuda")


def test_auto_device_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
