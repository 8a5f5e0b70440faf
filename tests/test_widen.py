"""tools/widen_walloc.py: a wider, deeper decoder that decodes as the old one and can learn."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from codec.models.weights import load_weights

TOOL = Path(__file__).resolve().parents[1] / "tools" / "widen_walloc.py"


def _widened(tiny_weights, tmp_path, *options: str):
    out = tmp_path / "wide.safetensors"
    subprocess.run([sys.executable, str(TOOL), str(tiny_weights), str(out), *options], check=True, capture_output=True)
    return load_weights(tiny_weights), load_weights(out)


def test_widened_decoder_decodes_as_the_old_one(tiny_weights, tmp_path):
    old, wide = _widened(tiny_weights, tmp_path, "--decoder-channels", "24", "--decoder-blocks", "2")
    assert wide.decoder.body[0].out_channels == 24 and len(wide.decoder.body) == 2 + 2 + 1
    torch.manual_seed(1)
    y = torch.randn(2, old.latent_channels, 6, 5) * 4
    with torch.no_grad():
        assert torch.allclose(wide.decoder(y), old.decoder(y), atol=1e-5)
        x = torch.rand(1, 3, 64, 48)
        assert torch.equal(wide.g_a(x), old.g_a(x))  # the encoder and hyperprior are untouched
    for key, value in old.state_dict().items():
        if not key.startswith("decoder."):
            assert torch.equal(value, wide.state_dict()[key]), key


def test_every_new_weight_gets_a_gradient(tiny_weights, tmp_path):
    """No new channel is stuck at a saddle: the zero weights see gradients through the random ones."""
    old, wide = _widened(tiny_weights, tmp_path, "--decoder-channels", "24", "--decoder-blocks", "2")
    wide.train()
    torch.manual_seed(2)
    y, target = torch.randn(1, old.latent_channels, 6, 5) * 4, torch.randn(1, 192, 6, 5)
    ((wide.decoder(y) - target) ** 2).mean().backward()
    output = wide.decoder.body[-1].weight.grad
    assert output[:, 16:].abs().sum() > 0  # the output conv's new inputs
    first = wide.decoder.body[2].body[0].weight.grad  # an old block's first conv, old rows reading new channels
    assert first[:16, 16:].abs().sum() > 0
    assert wide.decoder.body[3].body[2].weight.grad.abs().sum() > 0  # the new block's zero conv


def test_the_decoder_only_grows(tiny_weights, tmp_path):
    done = subprocess.run([sys.executable, str(TOOL), str(tiny_weights), str(tmp_path / "x.safetensors"),
                           "--decoder-channels", "8"], capture_output=True, text=True)
    assert done.returncode != 0 and "only grow" in done.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_a_walloc_cc_rebased_on_a_widened_walloc_takes_its_config(tiny_weights, tmp_path):
    """tools/rebase_walloc_cc.py on a widened walloc: the result's config has the new decoder."""
    import json

    from safetensors import safe_open

    from codec.models.weights import build_model, save_weights
    from conftest import TINY_WALLOC

    cc_config = dict(TINY_WALLOC, slices=4, slice_hidden=8, slice_kernel=3)
    cc = build_model("walloc-cc", cc_config)
    cc_path = tmp_path / "cc.safetensors"
    save_weights(cc, cc_path, architecture="walloc-cc", config=cc_config)
    _, wide = _widened(tiny_weights, tmp_path, "--decoder-channels", "24")
    out = tmp_path / "rebased.safetensors"
    tool = TOOL.with_name("rebase_walloc_cc.py")
    subprocess.run([sys.executable, str(tool), str(tmp_path / "wide.safetensors"), str(cc_path), str(out)],
                   check=True, capture_output=True)
    with safe_open(str(out), "pt") as f:
        config = json.loads(f.metadata()["config"])
    assert config == dict(cc_config, decoder_channels=24)
    rebased = load_weights(out)
    assert torch.equal(rebased.decoder.body[0].weight, wide.decoder.body[0].weight)


def test_widened_hyperprior_predicts_as_the_old_one(tiny_weights, tmp_path):
    """--hyper-channels: ``h_a`` and ``h_s`` (transposed convolutions included) give the old
    hyper-latents and parameters, and the new channels learn."""
    old, wide = _widened(tiny_weights, tmp_path, "--hyper-channels", "40")
    assert wide.h_s[0].out_channels == 40 and wide.h_a[0].out_channels == 40
    torch.manual_seed(3)
    y = torch.randn(1, old.latent_channels, 8, 8) * 4
    with torch.no_grad():
        z = old.h_a(y)
        assert torch.allclose(wide.h_a(y), z, atol=1e-5)
        assert torch.allclose(wide.h_s(z.round()), old.h_s(z.round()), atol=1e-5)
    for key, value in old.state_dict().items():
        if not key.startswith(("h_a.", "h_s.")):
            assert torch.equal(value, wide.state_dict()[key]), key
    wide.train()
    (wide.h_s(wide.h_a(y)) ** 2).mean().backward()
    hidden = old.h_s[0].out_channels
    assert wide.h_s[-1].weight.grad[:, hidden:].abs().sum() > 0  # the output reads the new channels
    assert wide.h_s[2].weight.grad[hidden:, :hidden].abs().sum() > 0  # a transposed conv's new inputs
    assert wide.h_a[-1].weight.grad[:, hidden:].abs().sum() > 0
