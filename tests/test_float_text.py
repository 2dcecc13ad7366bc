"""lecture.sizes.dumps_float64: the float64 text that the export avoids (notebook 04's sizes)."""

import json

import numpy as np
import torch

from cnnlib.export import dumps_float32
from cnnlib.lecture.sizes import dumps_float64


def test_float64_text_is_what_json_dumps_of_tolist_writes() -> None:
    weights = torch.tensor([0.41788855, -1.5, 3.0e-8], dtype=torch.float32)
    stored = json.loads(dumps_float32({"w": weights.numpy(), "label": 3}))
    assert dumps_float64(stored) == json.dumps(
        {"w": weights.tolist(), "label": 3}, separators=(",", ":")
    )
    assert (
        dumps_float64(stored) == '{"w":[0.4178885519504547,-1.5,2.999999892949745e-08],"label":3}'
    )


def test_float64_text_reads_back_to_the_same_float32() -> None:
    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    stored = json.loads(dumps_float32(values))
    widened = json.loads(dumps_float64(stored))
    assert np.array_equal(np.array(widened, dtype=np.float32), values)
    assert len(dumps_float64(stored)) > 1.5 * len(dumps_float32(values))
