"""Load an aekit run directory into PyTorch.

    from aekit_torch import load_run
    model, config = load_run("runs/mnist-dense-1")
    codes = model.encode(x)          # x: float tensor [batch, input_dim], preprocessed
    recon = model(x)

Every run whose variant describes its network loads (all of aekit's own do): aekit writes the
network into `config.json` as `graph`, a list of plain operations on the tensors of
`model.safetensors` (linear, activation, conv, conv_transpose, max_pool, avg_pool, resize,
reshape, append_class, quantize), and this module runs those operations — it knows no variant.
A VAE's `encode` is the posterior mean and `model(x)` decodes it, as aekit's `reconstruct`; a
conditional model's methods take each row's class index `y` as a second argument; a VQ-VAE's
`encode` is the quantised grid and `indices` the codebook entries. TensorFlow's asymmetric
"same" padding is done by F.pad, so the outputs match aekit's. Inputs and outputs are flat
[batch, C*H*W] as in aekit; inputs must be preprocessed as in training: see `preprocess.json`
(x' = (x - offset) * scale) and `preprocess()` below.

The module's parameters carry the names of `model.safetensors` (`encoder.0.weight` is
[out, in], as in nn.Linear); tensors the graph does not use (a VAE's log-variance head, a
discriminator used only in training) are left out.
"""

import json
import os

GRAPH_VERSION = 1

ACTIVATIONS = {
    "relu": lambda F, x: F.relu(x),
    "leaky-relu": lambda F, x: F.leaky_relu(x, 0.01),
    "sigmoid": lambda F, x: F.sigmoid(x),
    "tanh": lambda F, x: F.tanh(x),
    "gelu": lambda F, x: F.gelu(x),
    "elu": lambda F, x: F.elu(x),
    "silu": lambda F, x: F.silu(x),
    "linear": lambda F, x: x,
}


def _tensor_names(nodes):
    for node in nodes:
        for key in ("weight", "bias", "codebook"):
            if key in node:
                yield node[key]


def _graph_module(graph, tensors):
    import torch
    from torch import nn
    import torch.nn.functional as F

    class GraphModel(nn.Module):
        """A run's encoder and decoder as the operations `config.json` lists."""

        def __init__(self):
            super().__init__()
            self.graph = graph
            self.last_indices = None
            for name in dict.fromkeys(_tensor_names(graph["encoder"] + graph["decoder"])):
                if name not in tensors:
                    raise ValueError(f"model.safetensors has no tensor '{name}' that the graph uses")
                *path, leaf = name.split(".")
                module = self
                for part in path:
                    if part not in module._modules:
                        module.add_module(part, nn.Module())
                    module = module._modules[part]
                module.register_parameter(leaf, nn.Parameter(tensors[name].clone(), requires_grad=False))

        def _param(self, name):
            return self.get_parameter(name)

        def _run(self, x, nodes, y):
            for node in nodes:
                op = node["op"]
                if op == "linear":
                    x = F.linear(x, self._param(node["weight"]), self._param(node["bias"]))
                elif op == "activation":
                    x = ACTIVATIONS[node["function"]](F, x)
                elif op == "conv":
                    t, l, b, r = node["pads"]
                    x = F.conv2d(F.pad(x, (l, r, t, b)), self._param(node["weight"]), self._param(node["bias"]), node["stride"])
                elif op == "conv_transpose":
                    x = F.conv_transpose2d(
                        x, self._param(node["weight"]), self._param(node["bias"]), node["stride"],
                        padding=tuple(node["pads"]), output_padding=tuple(node["output_padding"]),
                    )
                elif op == "max_pool":
                    t, l, b, r = node["pads"]
                    x = F.max_pool2d(F.pad(x, (l, r, t, b), value=float("-inf")), node["size"])
                elif op == "avg_pool":
                    t, l, b, r = node["pads"]
                    # Padding is not averaged in (TensorFlow's "same" pooling).
                    total = F.avg_pool2d(F.pad(x, (l, r, t, b)), node["size"])
                    ones = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))
                    x = total / F.avg_pool2d(ones, node["size"])
                elif op == "resize":
                    if node["mode"] == "bilinear":
                        x = F.interpolate(x, size=tuple(node["size"]), mode="bilinear", align_corners=False)
                    else:
                        x = F.interpolate(x, size=tuple(node["size"]), mode="nearest")
                elif op == "reshape":
                    x = x.reshape(x.shape[0], *node["shape"])
                elif op == "append_class":
                    if y is None:
                        raise ValueError("a conditional model needs each row's class index y")
                    one_hot = F.one_hot(torch.as_tensor(y).long().reshape(-1), node["classes"])
                    x = torch.cat([x, one_hot.to(x.dtype)], 1)
                elif op == "quantize":
                    e = self._param(node["codebook"])
                    n, c, h, w = x.shape
                    v = x.flatten(2).transpose(1, 2)  # [batch, positions, width]
                    dist = (e * e).sum(1) - 2.0 * v @ e.T
                    idx = dist.argmin(-1)
                    self.last_indices = idx
                    x = e[idx].transpose(1, 2).reshape(n, c, h, w)
                else:
                    raise ValueError(f"unknown graph operation '{op}' (a newer aekit wrote this run)")
            return x

        def encode(self, x, y=None):
            return self._run(x, self.graph["encoder"], y)

        def decode_logits(self, z, y=None):
            return self._run(z, self.graph["decoder"], y)

        def decode(self, z, y=None):
            return ACTIVATIONS[self.graph["output_activation"]](F, self.decode_logits(z, y))

        def indices(self, x, y=None):
            """The codebook entry of each position of a codebook model's code."""
            self.last_indices = None
            self.encode(x, y)
            if self.last_indices is None:
                raise ValueError("this model has no codebook")
            return self.last_indices

        def forward(self, x, y=None):
            if not self.graph["residual"]:
                return self.decode(self.encode(x, y), y)
            # A residual model adds the input (as logits under a sigmoid output).
            skip = x
            if self.graph["output_activation"] == "sigmoid":
                c = self.graph["skip_clamp"]
                p = x.clamp(c, 1.0 - c)
                skip = torch.log(p / (1.0 - p))
            logits = self.decode_logits(self.encode(x, y), y) + skip
            return ACTIVATIONS[self.graph["output_activation"]](F, logits)

    return GraphModel()


def load_run(run_dir, weights="model.safetensors"):
    from safetensors.torch import load_file

    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    graph = config.get("graph")
    if graph is None:
        raise ValueError(
            f"{run_dir}: config.json has no graph (written by an older aekit, or by a variant "
            "that does not describe its network)"
        )
    if graph.get("version") != GRAPH_VERSION:
        raise ValueError(f"{run_dir}: graph version {graph.get('version')}, this loader reads {GRAPH_VERSION}")
    model = _graph_module(graph, load_file(os.path.join(run_dir, weights)))
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
