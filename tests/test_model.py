"""The network: encoders registry, the block split of the final layer, exact contributions."""
import numpy as np
import pytest
import torch

from mweight.config import ModelConfig
from mweight.encoders import ENCODERS, build_encoder, default_encoder
from mweight.model import MWeightNet

SHAPES = {"text": ((6,), "f"), "audio": ((5, 3), "f"), "video": ((4,), "f"), "dna": ((20,), "i")}


def _inputs(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ({"text": torch.randn(n, 6, generator=g), "audio": torch.randn(n, 5, 3, generator=g),
             "video": torch.randn(n, 4, generator=g), "dna": torch.randint(0, 4, (n, 20), generator=g)},
            {"audio": torch.randint(1, 6, (n,), generator=g)})


def _model(interactions, norm="iterbn", out_dim=1, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(interactions=interactions, norm=norm, rank=2, hidden=5, **kw)
    return MWeightNet(SHAPES, out_dim, cfg)


@pytest.mark.parametrize("norm", ["none", "bn", "vbn", "iterbn"])
@pytest.mark.parametrize("out_dim", [1, 3])
def test_contributions_sum_to_prediction(norm, out_dim):
    model = _model("all", norm=norm, out_dim=out_dim)
    x, lens = _inputs()
    model.train()
    model(x, lens)  # move running stats away from their init
    model.eval()
    out = model(x, lens, contributions=True)
    total = sum(out.contributions.values()) + out.bias
    assert torch.allclose(total, out.prediction, atol=1e-5)
    assert set(out.contributions) == set(model.block_names)


@pytest.mark.parametrize("interactions", [[], ["video*text"], ["audio*video", "text*audio*dna"], "pairs"])
def test_weight_split_matches_block_identity(interactions):
    """Only block S's slice non-zero => the prediction is that block's contribution, and
    changing a modality outside S leaves it unchanged."""
    model = _model(interactions).eval()
    x, lens = _inputs()
    for i, (name, sl) in enumerate(zip(model.block_names, model.slices)):
        with torch.no_grad():
            model.final.weight.zero_()
            model.final.weight[:, sl] = torch.randn(1, sl.stop - sl.start)
            model.final.bias.zero_()
        z = model.encode(x, lens)
        assert z[name].shape[1] == sl.stop - sl.start
        out = model(x, lens, contributions=True)
        assert torch.allclose(out.prediction, out.contributions[name], atol=1e-6)
        assert torch.allclose(out.contributions[name], z[name] @ model.final.weight[:, sl].T, atol=1e-6)
        members = name.split("*")
        for m in model.modalities:
            if m in members:
                continue
            x2 = dict(x)
            x2[m] = torch.randint(0, 4, x[m].shape) if m == "dna" else torch.randn_like(x[m])
            assert torch.allclose(model(x2, lens).prediction, out.prediction, atol=1e-6), (name, m)
    assert model.block_names[:4] == ["text", "audio", "video", "dna"]


def test_block_names_in_dataset_order():
    model = _model(["video*text", "dna*audio"])
    assert model.block_names[4:] == ["text*video", "audio*dna"]


def test_relevance_is_closed_form_of_block_norms():
    model = _model("pairs")
    beta = model.relevance()
    norms = np.array([model.final.weight[:, s].norm().item() for s in model.slices])
    assert np.allclose(beta, norms / norms.sum(), atol=1e-6)  # p = 1


def test_penalty_has_gradient_into_final_layer_only():
    model = _model("pairs")
    pen = model.penalty()
    assert pen.requires_grad
    pen.backward()
    assert model.final.weight.grad is not None and model.final.weight.grad.abs().sum() > 0
    assert model.final.bias.grad is None  # the bias is not penalised


def test_default_encoders_from_arrays():
    assert default_encoder(np.zeros((3, 100), np.int8)) == "dna_cnn"
    assert default_encoder(np.zeros((3, 7), np.float32)) == "mlp"
    assert default_encoder(np.zeros((3, 5, 7), np.float32)) == "gru"
    model = _model([])
    assert model.encoder_names == {"text": "mlp", "audio": "gru", "video": "mlp", "dna": "dna_cnn"}


@pytest.mark.parametrize("name", ["gru", "lstm", "transformer"])
def test_sequence_encoders_ignore_padding(name):
    torch.manual_seed(0)
    enc = build_encoder(name, (7, 3), hidden=8, dropout=0.0).eval()
    x = torch.randn(4, 7, 3)
    lengths = torch.tensor([7, 3, 1, 5])
    y1 = enc(x, lengths)
    x2 = x.clone()
    for i, l in enumerate(lengths):
        x2[i, l:] = 100.0  # garbage in the padding
    assert torch.allclose(y1, enc(x2, lengths), atol=1e-5)
    assert y1.shape == (4, enc.out_dim)


def test_registry_has_required_encoders_and_rejects_bad_options():
    assert {"mlp", "gru", "lstm", "transformer", "dna_cnn"} <= set(ENCODERS)
    with pytest.raises(ValueError, match="model.encoders.text.widht"):
        build_encoder("mlp", (4,), modality="text", widht=3)
    with pytest.raises(ValueError, match="unknown encoder 'cnn9'"):
        build_encoder("cnn9", (4,), modality="text")

