"""Load an aekit run directory into PyTorch.

    from aekit_torch import load_run
    model, config = load_run("runs/mnist-dense-1")
    codes = model.encode(x)          # x: float tensor [batch, input_dim], preprocessed
    recon = model(x)

Dense, RAE, WAE, adversarial, convolutional, variational, IWAE, InfoVAE, β-TCVAE and FactorVAE
runs (with or without a conv trunk), conditional VAEs and VQ-VAEs load (the discriminators of the
FactorVAE and the adversarial autoencoder are left out: they are only for training) (a VAE's `encode` is the posterior mean, and `model(x)` decodes it, as aekit's
`reconstruct`; a conditional VAE's methods take the class indices `y` as a second argument
`reconstruct`; a VQ-VAE's `encode` is the quantised grid and `indices` the codebook entries) (a conv run's layers are rebuilt from the layer specs in
`config.json`, with TensorFlow's asymmetric "same" padding done by F.pad, so the outputs match
aekit's); inputs and outputs are flat [batch, C*H*W] as in aekit.

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


def _same(n, k, s):
    """TensorFlow's "same" padding (before, after) and output size, as aekit computes it."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return (total // 2, total - total // 2), out


def _window(n, k, s, pad):
    if pad == "same":
        return _same(n, k, s)
    if pad == "valid":
        return (0, 0), (n - k) // s + 1
    p = int(pad)
    return (p, p), (n + 2 * p - k) // s + 1


def _parse_layer(spec):
    """A layer spec (conv:16:3:s2:valid:relu, convt:..., maxpool:2, up:2, dense:N, reshape:CxHxW)."""
    toks = spec.split(":")
    kind = toks[0].lower()
    npos = 3 if kind in ("conv", "convt") else 2
    layer = {"kind": kind, "stride": 1, "pad": "same", "op": (0, 0), "act": None, "mode": "nearest"}
    for o in (t.lower() for t in toks[npos:]):
        if o in ("same", "valid"):
            layer["pad"] = o
        elif o in ("nearest", "bilinear"):
            layer["mode"] = o
        elif o.startswith("op") and o[2:].isdigit():
            layer["op"] = (int(o[2:]), int(o[2:]))
        elif o.startswith("op") and "x" in o:
            layer["op"] = tuple(int(v) for v in o[2:].split("x"))
        elif o.startswith("s") and o[1:].isdigit():
            layer["stride"] = int(o[1:])
        elif o.startswith("p") and o[1:].isdigit():
            layer["pad"] = o[1:]
        else:
            layer["act"] = o
    if kind in ("conv", "convt"):
        layer["channels"], layer["kernel"] = int(toks[1]), int(toks[2])
    elif kind in ("maxpool", "avgpool", "dense"):
        layer["size"] = int(toks[1])
    elif kind == "up":
        layer["to"] = tuple(int(v) for v in toks[1].split("x")) if "x" in toks[1] else None
        layer["scale"] = None if "x" in toks[1] else int(toks[1])
    elif kind == "reshape":
        layer["shape"] = tuple(int(v) for v in toks[1].split("x"))
    return layer


def _conv_stack(specs, shape, hidden_act, last_act):
    """Modules of one aekit layer stack, indexed like its tensors (`encoder.2.weight` is layer
    2), each with its activation; returns the modules, activations and the output shape."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class PaddedConv2d(nn.Conv2d):
        def __init__(self, c_in, c_out, k, stride, pads):
            super().__init__(c_in, c_out, k, stride=stride)
            self.pads = pads  # (left, right, top, bottom) for F.pad

        def forward(self, x):
            return F.conv2d(F.pad(x, self.pads), self.weight, self.bias, self.stride)

    class Pool(nn.Module):
        def __init__(self, size, pads, is_max):
            super().__init__()
            self.size, self.pads, self.is_max = size, pads, is_max

        def forward(self, x):
            if self.is_max:
                return F.max_pool2d(F.pad(x, self.pads, value=float("-inf")), self.size)
            # Padding is not averaged in (TensorFlow's "same" pooling).
            total = F.avg_pool2d(F.pad(x, self.pads), self.size)
            ones = F.pad(torch.ones_like(x[:1, :1]), self.pads)
            return total / F.avg_pool2d(ones, self.size)

    class Upsample(nn.Module):
        def __init__(self, size, mode):
            super().__init__()
            self.size, self.mode = size, mode

        def forward(self, x):
            if self.mode == "bilinear":
                return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
            return F.interpolate(x, size=self.size, mode="nearest")

    class Reshape(nn.Module):
        def __init__(self, shape):
            super().__init__()
            self.shape = shape

        def forward(self, x):
            return x.reshape(x.shape[0], *self.shape) if self.shape else x.flatten(1)

    layers = [_parse_layer(s) for s in specs]
    weighted = [i for i, l in enumerate(layers) if l["kind"] in ("conv", "convt", "dense")]
    last = weighted[-1] if weighted else None
    modules, acts = [], []
    for i, l in enumerate(layers):
        act = last_act if (i == last and last_act is not None) else (l["act"] or hidden_act)
        k = l["kind"]
        if k == "conv":
            (pt, pb), h = _window(shape[1], l["kernel"], l["stride"], l["pad"])
            (pl, pr), w = _window(shape[2], l["kernel"], l["stride"], l["pad"])
            modules.append(PaddedConv2d(shape[0], l["channels"], l["kernel"], l["stride"], (pl, pr, pt, pb)))
            shape = (l["channels"], h, w)
        elif k == "convt":
            kk, s = l["kernel"], l["stride"]
            if l["pad"] == "same":
                d = kk - s
                p = -(-d // 2)
                pads, ops = (p, p), (2 * p - d, 2 * p - d)
                size = (shape[1] * s, shape[2] * s)
            else:
                p = 0 if l["pad"] == "valid" else int(l["pad"])
                pads, ops = (p, p), l["op"]
                size = tuple((n - 1) * s + kk + o - 2 * p for n, o in zip(shape[1:], ops))
            modules.append(nn.ConvTranspose2d(shape[0], l["channels"], kk, stride=s, padding=pads, output_padding=ops))
            shape = (l["channels"], *size)
        elif k in ("maxpool", "avgpool"):
            (pt, pb), h = _window(shape[1], l["size"], l["size"], l["pad"])
            (pl, pr), w = _window(shape[2], l["size"], l["size"], l["pad"])
            modules.append(Pool(l["size"], (pl, pr, pt, pb), k == "maxpool"))
            shape = (shape[0], h, w)
            act = None
        elif k == "up":
            size = l["to"] or (shape[1] * l["scale"], shape[2] * l["scale"])
            modules.append(Upsample(tuple(size), l["mode"]))
            shape = (shape[0], *size)
            act = None
        elif k == "dense":
            d_in = 1
            for v in shape:
                d_in *= v
            modules.append(nn.Sequential(Reshape(None), nn.Linear(d_in, l["size"])) if len(shape) > 1 else nn.Linear(d_in, l["size"]))
            shape = (l["size"],)
        else:
            modules.append(Reshape(l["shape"]))
            shape = l["shape"]
            act = None
        acts.append(ACTIVATIONS[act](nn) if act else nn.Identity())
    return modules, acts, shape


def _load_conv(m, nn):
    shape = tuple(m["input_shape"])
    enc_last = m.get("code_activation", "linear") if m["encoder"][-1].startswith("dense") else None
    enc, enc_acts, code = _conv_stack(m["encoder"], shape, m.get("activation", "relu"), enc_last)
    dec, dec_acts, out = _conv_stack(m["decoder"], code, m.get("activation", "relu"), m["output_activation"])

    class ConvAutoencoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList(enc)
            self.decoder = nn.ModuleList(dec)
            self.enc_acts, self.dec_acts = enc_acts, dec_acts

        @staticmethod
        def _run(x, layers, acts, shape):
            x = x.reshape(x.shape[0], *shape) if len(shape) == 3 else x
            for layer, act in zip(layers, acts):
                x = act(layer(x))
            return x.flatten(1)

        def encode(self, x):
            return self._run(x, self.encoder, self.enc_acts, shape)

        def decode(self, z):
            return self._run(z, self.decoder, self.dec_acts, code)

        def forward(self, x):
            return self.decode(self.encode(x))

    return ConvAutoencoder()


def _load_vae(m, nn, torch):
    """A dense VAE: `encode` gives the posterior mean (as aekit's), `posterior` (mu, logvar).
    A conditional VAE's encoder input and decoder code are followed by the class one-hot."""
    d, hidden, latent = m["input_dim"], m.get("hidden", []), m["latent"]
    classes = m.get("classes", 0) if m["kind"] == "cvae" else 0
    act = ACTIVATIONS[m.get("activation", "relu")]
    out_act = ACTIVATIONS[m.get("output_activation", "linear")]
    conv = m.get("conv")
    if conv:
        # A conv trunk before the dense encoder, its mirror after the dense decoder (whose
        # last layer then keeps the hidden activation).
        image = tuple(m["input_shape"])
        hidden_name = m.get("activation", "relu")
        trunk, trunk_acts, trunk_shape = _conv_stack(conv, image, hidden_name, None)
        back, back_acts, _ = _conv_stack(m["conv_decoder"], trunk_shape, hidden_name, m["output_activation"])
        d = 1
        for v in trunk_shape:
            d *= v
        out_act = act
    enc = [d + classes] + hidden
    dec = [latent + classes] + list(reversed(hidden)) + [d]

    def given(t, y):
        if classes == 0:
            return t
        if y is None:
            raise ValueError("a conditional VAE needs each row's class index y")
        one_hot = torch.nn.functional.one_hot(torch.as_tensor(y).long(), classes)
        return torch.cat([t, one_hot.to(t.dtype)], 1)

    class Vae(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc, enc[1:]))
            self.fc_mu = nn.Linear(enc[-1], latent)
            self.fc_logvar = nn.Linear(enc[-1], latent)
            self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec, dec[1:]))
            self.act, self.out_act = act(nn), out_act(nn)
            if conv:
                self.conv_encoder = nn.ModuleList(trunk)
                self.conv_decoder = nn.ModuleList(back)

        def _trunk(self, x, layers, acts, shape):
            x = x.reshape(x.shape[0], *shape) if len(shape) == 3 else x
            for layer, a in zip(layers, acts):
                x = a(layer(x))
            return x.flatten(1)

        def posterior(self, x, y=None):
            x = given(x, y)
            if conv:
                x = self._trunk(x, self.conv_encoder, trunk_acts, image)
            for layer in self.encoder:
                x = self.act(layer(x))
            return self.fc_mu(x), self.fc_logvar(x)

        def encode(self, x, y=None):
            return self.posterior(x, y)[0]

        def decode(self, z, y=None):
            z = given(z, y)
            for i, layer in enumerate(self.decoder):
                z = layer(z)
                z = self.out_act(z) if i == len(self.decoder) - 1 else self.act(z)
            if conv:
                z = self._trunk(z, self.conv_decoder, back_acts, trunk_shape)
            return z

        def forward(self, x, y=None):
            return self.decode(self.encode(x, y), y)

    return Vae()


def _load_vqvae(m, nn, torch):
    """A VQ-VAE: `encode` gives the quantised grid, flat and channel-major as in aekit;
    `indices` the codebook entry of each position; the usage statistics are buffers."""
    image = tuple(m["input_shape"])
    hidden_name = m.get("activation", "relu")
    enc, enc_acts, grid = _conv_stack(m["encoder"], image, hidden_name, "linear")
    dec, dec_acts, _ = _conv_stack(m["decoder"], grid, hidden_name, m["output_activation"])
    codes, width = m.get("codes", 128), grid[0]

    class VqVae(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_encoder = nn.ModuleList(enc)
            self.conv_decoder = nn.ModuleList(dec)
            self.codebook = nn.Parameter(torch.zeros(codes, width))
            if m.get("ema_decay") is not None or m.get("restart_dead_codes"):
                self.register_buffer("codebook_usage", torch.zeros(1, codes))
            if m.get("ema_decay") is not None:
                self.register_buffer("codebook_ema_sum", torch.zeros(codes, width))

        @staticmethod
        def _run(x, layers, acts, shape):
            x = x.reshape(x.shape[0], *shape)
            for layer, a in zip(layers, acts):
                x = a(layer(x))
            return x

        def _vectors(self, x):
            h = self._run(x, self.conv_encoder, enc_acts, image)
            return h.flatten(2).transpose(1, 2)  # [batch, positions, width]

        def indices(self, x):
            v = self._vectors(x)
            e = self.codebook
            dist = (e * e).sum(1) - 2.0 * v @ e.T
            return dist.argmin(-1)

        def encode(self, x):
            q = self.codebook[self.indices(x)]  # [batch, positions, width]
            return q.transpose(1, 2).flatten(1)

        def decode(self, z):
            return self._run(z, self.conv_decoder, dec_acts, grid).flatten(1)

        def forward(self, x):
            return self.decode(self.encode(x))

    return VqVae()


def _without_discriminator(tensors):
    """The weights less an adversarial model's discriminator on codes (training only)."""
    return {k: v for k, v in tensors.items() if not k.startswith("discriminator.")}


def load_run(run_dir, weights="model.safetensors"):
    import torch
    from torch import nn
    from safetensors.torch import load_file

    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    m = config["model"]
    if m["kind"] == "conv":
        model = _load_conv(m, nn)
        tensors = load_file(os.path.join(run_dir, weights))
        # Dense layers inside a conv stack sit behind a flatten: `encoder.6.weight` is
        # `encoder.6.1.weight` in the module.
        own = model.state_dict()
        renamed = {}
        for k, v in tensors.items():
            prefix, suffix = k.rsplit(".", 1)
            renamed[k if k in own else f"{prefix}.1.{suffix}"] = v
        model.load_state_dict(renamed, strict=True)
        model.eval()
        return model, config
    if m["kind"] == "vqvae":
        model = _load_vqvae(m, nn, torch)
        model.load_state_dict(load_file(os.path.join(run_dir, weights)), strict=True)
        model.eval()
        return model, config
    # IWAEs, InfoVAEs, β-TCVAEs and FactorVAEs are a VAE's network trained on other
    # objectives; a conditional VAE's is wider by the class one-hot.
    if m["kind"] in ("vae", "iwae", "infovae", "btcvae", "factorvae", "cvae"):
        if m.get("conv") and not m.get("conv_decoder"):
            raise ValueError("this conv VAE's config has no conv_decoder (saved by an older aekit)")
        model = _load_vae(m, nn, torch)
        model.load_state_dict(_without_discriminator(load_file(os.path.join(run_dir, weights))), strict=True)
        model.eval()
        return model, config
    # RAEs, WAEs and adversarial autoencoders are dense autoencoders trained with penalties.
    if m["kind"] not in ("dense", "rae", "wae", "aae"):
        raise ValueError(
            f"this loader knows dense, rae, wae, aae, conv, vae, iwae, infovae, btcvae, factorvae, cvae and vqvae models, not {m['kind']}"
        )
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
    model.load_state_dict(_without_discriminator(load_file(os.path.join(run_dir, weights))), strict=True)
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
