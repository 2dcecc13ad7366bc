"""The model: the demo's architecture, its state-dict keys, shapes and parameter counts."""

import torch

from cnnlib.model import ACTIVATION_NAMES, CNN, count_parameters

EXPECTED_STATE = {
    "conv1.weight": (4, 1, 3, 3),
    "conv1.bias": (4,),
    "conv2.weight": (8, 4, 3, 3),
    "conv2.bias": (8,),
    "fc1.weight": (128, 200),
    "fc1.bias": (128,),
    "fc2.weight": (10, 128),
    "fc2.bias": (10,),
}


def test_state_dict_has_exactly_the_demo_keys_and_shapes():
    state = CNN().state_dict()
    assert {key: tuple(tensor.shape) for key, tensor in state.items()} == EXPECTED_STATE
    assert list(state) == list(EXPECTED_STATE)


def test_parameter_counts_per_layer_and_in_total():
    counts = count_parameters(CNN())
    assert counts == {"conv1": 40, "conv2": 296, "fc1": 25_728, "fc2": 1_290}
    assert sum(counts.values()) == 27_354


def test_activations_have_the_shapes_the_demo_draws():
    activations = CNN().activations(torch.randn(3, 1, 28, 28))
    shapes = {name: tuple(tensor.shape) for name, tensor in activations.items()}
    assert shapes == {
        "conv1": (3, 4, 26, 26),
        "pool1": (3, 4, 13, 13),
        "conv2": (3, 8, 11, 11),
        "pool2": (3, 8, 5, 5),
        "fc1": (3, 128),
        "logits": (3, 10),
    }
    assert tuple(ACTIVATION_NAMES) == ("conv1", "pool1", "conv2", "pool2", "fc1")


def test_conv_activations_are_taken_before_relu_and_pooling_after():
    torch.manual_seed(0)
    activations = CNN().activations(torch.randn(2, 1, 28, 28))
    assert (activations["conv1"] < 0).any() and (activations["conv2"] < 0).any()
    assert (activations["pool1"] >= 0).all() and (activations["pool2"] >= 0).all()
    assert (activations["fc1"] >= 0).all()
    expected_pool1 = torch.nn.functional.max_pool2d(activations["conv1"].relu(), 2)
    assert torch.equal(activations["pool1"], expected_pool1)


def test_forward_returns_the_logits_of_activations():
    model = CNN()
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model(x), model.activations(x)["logits"])
