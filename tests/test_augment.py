"""Training-time phrasing augmentations and the small storage of the tuned encoder layers
(no services, no model weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasoning.gnn.augment import GROUPS, Augmenter, normalise
from reasoning.gnn.checkpoint import SCALE, pack_layers, unpack_layers
from reasoning.gnn.train import augment_groups
from reasoning.linking import MASK, template_key

TEMPLATES = [
    "what films did NE act in",
    "who directed the films written by the writer of NE",
    "the films that share actors with the film NE were released in which years",
    "what is the genre of the movie NE",
    "NE co-starred with who",
    "which words describe NE",
]


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_rephrases_and_keeps_the_mask(group: str) -> None:
    augment = Augmenter([group], np.random.default_rng(0), p=1.0, clean=0.0)
    outputs = [augment(t) for t in TEMPLATES for _ in range(5)]
    assert any(out not in TEMPLATES for out in outputs), f"{group} changed nothing"
    for out in outputs:
        assert out.count(MASK) == 1, out  # the entity mask is never misspelt, dropped or doubled
        assert out == normalise(out), out  # what the encoder trains on is what template_key serves


def test_normalise_is_template_key() -> None:
    text = "  Hey, WHO directed   NE ?? "
    at = text.index(MASK)
    assert normalise(text) == template_key(text, (at, at + len(MASK))) == "hey, who directed NE"


def test_no_groups_is_the_identity_and_seeds_repeat() -> None:
    assert [Augmenter([], np.random.default_rng(0))(t) for t in TEMPLATES] == TEMPLATES
    first = [Augmenter(GROUPS, np.random.default_rng(7))(t) for t in TEMPLATES * 3]
    again = [Augmenter(GROUPS, np.random.default_rng(7))(t) for t in TEMPLATES * 3]
    assert first == again


def test_group_specs() -> None:
    assert augment_groups("all") == list(GROUPS)
    assert augment_groups("none") == []
    assert augment_groups("all,-typos") == [g for g in GROUPS if g != "typos"]
    assert augment_groups("synonyms,fillers") == ["synonyms", "fillers"]
    with pytest.raises(ValueError, match="unknown augmentation groups"):
        augment_groups("casing")


def test_packed_layers_are_small_and_close() -> None:
    generator = torch.Generator().manual_seed(0)
    weights = {
        "encoder.layer.0.attention.self.query.weight": torch.randn(384, 384, generator=generator) * 0.05,
        "encoder.layer.0.attention.self.query.bias": torch.randn(384, generator=generator) * 0.01,
    }
    packed = pack_layers(weights, int8=True)
    matrix = "encoder.layer.0.attention.self.query.weight"
    assert packed[matrix].dtype == torch.int8 and packed[matrix + SCALE].dtype == torch.float16
    assert packed["encoder.layer.0.attention.self.query.bias"].dtype == torch.float16
    restored = unpack_layers(packed)
    assert set(restored) == set(weights)
    step = weights[matrix].abs().amax(dim=1, keepdim=True) / 127
    assert ((restored[matrix] - weights[matrix]).abs() <= 0.51 * step + 1e-4).all()
    fp16 = unpack_layers(pack_layers(weights, int8=False))
    assert torch.allclose(fp16[matrix], weights[matrix], atol=1e-3)
