"""Data as NumPy arrays: the built-in shapes, IDX files and MNIST."""

import os

import numpy as np

from . import _aekit


def shapes(n=1000, seed=0):
    """`(X, y)`: `n` 28x28 pictures of squares, rings, triangles and bars (aekit's built-in
    data, generated from `seed`), flattened to 784 values in [0, 1], and their classes 0-3."""
    x, y = _aekit.shapes(int(n), int(seed))
    return x / np.float32(255), y


def load_idx(path):
    """An IDX file (gzip or raw) as an array of its own shape and type."""
    return _aekit.load_idx(os.fspath(path))


def load_mnist(path):
    """`(X_train, y_train, X_test, y_test)` from a directory with MNIST's four IDX files;
    images flattened to 784 values in [0, 1]."""
    out = []
    for split in ("train", "t10k"):
        x = load_idx(os.path.join(path, f"{split}-images-idx3-ubyte.gz"))
        y = load_idx(os.path.join(path, f"{split}-labels-idx1-ubyte.gz"))
        out += [x.reshape(len(x), -1).astype(np.float32) / np.float32(255), y.astype(np.int64)]
    return tuple(out)
