"""The one training loop (`cnnlib.train.fit`): the factory's run, the lecture's experiments and the
hyperparameter grid all train through it, on the same batches, bit for bit."""

import pytest
import torch

from cnnlib.data import validation_split
from cnnlib.lecture import experiments, hyperparams
from cnnlib.model import CNN
from cnnlib.train import (
    TRAIN_SIZE,
    ConfigError,
    TrainConfig,
    evaluate,
    fit,
    single_threaded,
    start,
    training_images,
)
from tests.conftest import SHORT


def equal_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_an_experiment_trained_the_factorys_way_gives_the_factorys_weights(mnist, short_results):
    model = experiments.train_model(CNN, SHORT, mnist)
    assert equal_weights(model.state_dict(), short_results[-1].state_dict)


def test_an_experiment_with_another_seed_gives_other_weights(mnist, short_results):
    other = TrainConfig(epochs=2, batches_per_epoch=5, seed=1, device="cpu")
    model = experiments.train_model(CNN, other, mnist)
    assert not equal_weights(model.state_dict(), short_results[-1].state_dict)


def test_frozen_layers_keep_their_start_bit_for_bit_and_the_others_move(mnist, short_results):
    model = experiments.train_model(CNN, SHORT, mnist, frozen=("conv1", "fc2"))
    start_state, trained = short_results[0].state_dict, model.state_dict()
    for name in trained:
        frozen = name.startswith(("conv1.", "fc2."))
        assert torch.equal(trained[name], start_state[name]) == frozen, name


def test_the_loop_draws_only_training_images_in_the_order_the_factory_trains_on(mnist):
    model, optimizer = start(SHORT)
    epochs = list(fit(model, optimizer, SHORT, mnist, measure_start=True))
    assert [epoch.number for epoch in epochs] == [0, 1, 2]
    held_out = set(validation_split(60_000)[1].tolist())
    for epoch in epochs:
        assert len(epoch.drawn) == SHORT.batches_per_epoch * SHORT.batch_size
        assert not held_out & set(epoch.drawn.tolist())
    assert not torch.equal(epochs[1].drawn, epochs[2].drawn)  # a fresh shuffle each epoch


def test_never_drawn_counts_what_the_real_training_steps_drew(mnist):
    config = TrainConfig(epochs=3, batches_per_epoch=4, batch_size=50, device="cpu")
    model, optimizer = start(config)
    drawn = set()
    for epoch in fit(model, optimizer, config, mnist, images=400):
        drawn |= set(epoch.drawn.tolist())
    assert drawn <= set(training_images(400).tolist())
    assert 0 < experiments.never_drawn(config, 400) == 400 - len(drawn)


def test_the_lectures_run_leaves_4698_of_the_55000_images_never_drawn():
    assert experiments.never_drawn(TrainConfig()) == 4_698


def test_a_small_training_set_is_the_first_images_of_the_55000_each_epoch_a_pass(mnist):
    assert torch.equal(training_images(100), validation_split(60_000)[0][:100])
    config = TrainConfig(epochs=2, batches_per_epoch=100, batch_size=64, device="cpu")
    model, optimizer = start(config, experiments.mlp)
    epochs = list(fit(model, optimizer, config, mnist, images=100))
    assert [epoch.number for epoch in epochs] == [1, 2]  # epoch 0 only when asked for
    for epoch in epochs:
        assert sorted(epoch.drawn.tolist()) == training_images(100).tolist()
        assert epoch.accuracy == round(epoch.accuracy)  # percent of 100 images: whole numbers


@pytest.mark.parametrize("images", [0, TRAIN_SIZE + 1, 60_000])
def test_more_images_than_training_may_use_are_refused(images):
    with pytest.raises(ConfigError, match=f"images must be between 1 and {TRAIN_SIZE}"):
        experiments.never_drawn(SHORT, images)


def test_a_grid_cell_is_one_epoch_of_the_same_loop(mnist):
    cell = hyperparams.train_cell(mnist, "SGD", 0.1, 32, steps=5, seed=3)
    config = TrainConfig(epochs=1, batches_per_epoch=5, batch_size=32, lr=0.1, seed=3, device="cpu")
    model, optimizer = start(config, CNN, optimizer="SGD")
    assert isinstance(optimizer, torch.optim.SGD)
    for _ in fit(model, optimizer, config, mnist):
        pass
    held_out = validation_split(60_000)[1]
    with single_threaded():
        loss, accuracy = evaluate(model, mnist.train_pixels[held_out], mnist.train_labels[held_out])
    assert (cell.validation_loss, cell.validation_accuracy) == (loss, accuracy)
