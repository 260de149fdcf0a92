"""Load an aekit run directory into PyTorch.

    from aekit_torch import load_run
    model, config = load_run("runs/mnist-dense-1")
    codes = model.encode(x)          # x: float tensor [batch, input_dim], preprocessed
    recon = model(x)

aekit writes `model.safetensors` with PyTorch names and layouts (`encoder.0.weight` is
[out, in], as in nn.Linear) and `config.json` with the architecture, so the module below
loads it with `load_state_dict(strict=True)`. Inputs must be preprocessed as in training:
see `preprocess.json` (x' = (x - offset) * scale) and `preprocess()` below.
"""

import json
import os

ACTIVATIONS = {
    "relu": lambda nn: nn.ReLU(),
    "leaky-relu": lambda nn: nn.LeakyReLU(0.01),
    "sigmoid": lambda nn: nn.Sigmoid(),
    "tanh": lambda nn: nn.Tanh(),
    "gelu": lambda nn: nn.GELU(),
    "elu": lambda nn: nn.ELU(),
    "silu": lambda nn: nn.SiLU(),
    "linear": lambda nn: nn.Identity(),
}


def _dense_layout(model_cfg):
    """Widths and activations of the encoder and decoder, as aekit builds them."""
    d = model_cfg["input_dim"]
    hidden = model_cfg.get("hidden", [])
    dec_hidden = model_cfg.get("decoder_hidden") or list(reversed(hidden))
    act = model_cfg.get("activation", "relu")
    enc_acts = (model_cfg.get("encoder_activations") or [act] * len(hidden)) + [
        model_cfg.get("code_activation", "linear")
    ]
    dec_acts = (model_cfg.get("decoder_activations") or [act] * len(dec_hidden)) + [
        model_cfg.get("output_activation", "linear")
    ]
    enc = [d] + hidden + [model_cfg["latent"]]
    dec = [model_cfg["latent"]] + dec_hidden + [d]
    return enc, enc_acts, dec, dec_acts


def load_run(run_dir, weights="model.safetensors"):
    import torch
    from torch import nn
    from safetensors.torch import load_file

    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    m = config["model"]
    if m["kind"] != "dense":
        raise ValueError(f"this loader knows dense models, not {m['kind']}")
    enc, enc_acts, dec, dec_acts = _dense_layout(m)

    class Autoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc, enc[1:]))
            self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec, dec[1:]))
            self.enc_acts = [ACTIVATIONS[a](nn) for a in enc_acts]
            self.dec_acts = [ACTIVATIONS[a](nn) for a in dec_acts]

        def encode(self, x):
            for layer, act in zip(self.encoder, self.enc_acts):
                x = act(layer(x))
            return x

        def decode(self, z):
            for layer, act in zip(self.decoder, self.dec_acts):
                z = act(layer(z))
            return z

        def forward(self, x):
            return self.decode(self.encode(x))

    model = Autoencoder()
    model.load_state_dict(load_file(os.path.join(run_dir, weights)), strict=True)
    model.eval()
    return model, config


def preprocess(run_dir, x):
    """Applies the run's fitted scaling to raw inputs (a NumPy array or a tensor)."""
    with open(os.path.join(run_dir, "preprocess.json")) as f:
        p = json.load(f)
    import numpy as np

    offset = np.asarray(p["offset"], dtype=np.float32)
    scale = np.asarray(p["scale"], dtype=np.float32)
    return (x - offset) * scale
