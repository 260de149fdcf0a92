"""aekit for Python: autoencoders trained by aekit's Rust core, with scikit-learn and PyOD
conventions.

    import aekit
    X, y = aekit.datasets.shapes(2000, seed=0)
    ae = aekit.AutoEncoder(latent=2, epochs=10).fit(X)
    codes = ae.transform(X)                     # (2000, 2)
    det = aekit.AnomalyDetector(contamination=0.1).fit(X)
    det.predict(X)                              # 0 = normal, 1 = anomaly, as PyOD

`X` may be a NumPy array, or a table: a pandas or polars DataFrame, a pyarrow Table or
RecordBatch (read through the Arrow C stream interface, without a copy; every numeric column is
a feature, or those `Run`'s table methods name by `columns=`). Data too large to hold is given to `fit` as an
iterator of such batches, or a pyarrow RecordBatchReader: it is written once to a Parquet file
beside the run and streamed every epoch. `Run.encode_table(X, keep=["id"])` (and
`reconstruct_table`, `score_table`) answer a table as a pyarrow Table, with chosen columns of
`X` beside the outputs.

Every fitted model is an aekit run directory (`.run_dir_`), the same format the `aekit`
command line writes and reads: `AutoEncoder.save(path)` and `aekit.Run.open(path)` cross
between the two front ends.
"""

import json
import os
import shutil
import tempfile

import numpy as np

from . import _aekit, datasets

try:
    from sklearn.base import BaseEstimator as _BaseEstimator
    from sklearn.base import TransformerMixin as _TransformerMixin
    from sklearn.base import ClassifierMixin as _ClassifierMixin
except ImportError:  # scikit-learn is optional: the same parameter protocol without it

    class _BaseEstimator:
        @classmethod
        def _get_param_names(cls):
            import inspect

            return sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")

        def get_params(self, deep=True):
            return {p: getattr(self, p) for p in self._get_param_names()}

        def set_params(self, **params):
            for k, v in params.items():
                if k not in self._get_param_names():
                    raise ValueError(f"Invalid parameter {k!r} for estimator {type(self).__name__}")
                setattr(self, k, v)
            return self

    class _TransformerMixin:
        def fit_transform(self, X, y=None):
            return self.fit(X, y).transform(X)

    class _ClassifierMixin:
        def score(self, X, y):
            return float(np.mean(self.predict(X) == np.asarray(y)))

try:
    from sklearn.utils import check_array as _check_array
except ImportError:
    _check_array = None

__all__ = ["AutoEncoder", "AutoEncoderClassifier", "AnomalyDetector", "BatchMapper", "Run",
           "SeriesDetector", "TableDetector", "datasets"]
__version__ = "0.1.0"


class Run:
    """A run directory written by `aekit train` or by `AutoEncoder.save`, ready to use."""

    def __init__(self, handle, path):
        self._handle = handle
        self.path = path

    @classmethod
    def open(cls, path):
        path = os.fspath(path)
        return cls(_aekit.RunHandle(path), path)

    @property
    def info(self):
        """Architecture, capabilities, training summary and the stored anomaly threshold."""
        return json.loads(self._handle.info())

    @property
    def latent(self):
        return self._handle.latent

    @property
    def input_dim(self):
        return self._handle.input_dim

    @property
    def classes(self):
        """The number of classes a conditional model (`model="cvae"`) is conditioned on; 0
        for other models. Its methods take each row's class index as `y`."""
        return self._handle.classes

    def encode(self, X, y=None):
        return self._handle.encode(_rows(X, "X"), _class_indices(y))

    def encode_table(self, X, keep=(), columns=None):
        """The codes of the table `X` as a pyarrow Table: the columns `keep` of `X`, then `z`
        (a fixed-size list per row), as `aekit encode --out codes.parquet` writes them."""
        return _output_table(X, keep, "z", self.encode(_rows(X, "X", columns, keep)))

    def reconstruct_table(self, X, keep=(), columns=None):
        """The reconstructions of the table `X` (column `x`) beside its columns `keep`."""
        return _output_table(X, keep, "x", self.reconstruct(_rows(X, "X", columns, keep)))

    def score_table(self, X, keep=(), columns=None):
        """The anomaly scores of the table `X` (column `score`) beside its columns `keep`."""
        return _output_table(X, keep, "score", self.score_samples(_rows(X, "X", columns, keep)))

    def decode(self, Z, y=None):
        return self._handle.decode(_rows(Z, "Z"), _class_indices(y))

    def reconstruct(self, X, y=None):
        return self._handle.reconstruct(_rows(X, "X"), _class_indices(y))

    def class_probabilities(self, X):
        """A semi-supervised model's class probabilities q(y|x), one row per sample."""
        return self._handle.class_probabilities(_rows(X, "X"))

    def score_samples(self, X, y=None):
        """Squared reconstruction error per sample, as `aekit score` computes it."""
        return self._handle.score_samples(_rows(X, "X"), _class_indices(y))

    def sample(self, n=16, seed=0, label=None):
        """Decodes `n` draws from the prior (VAEs); a conditional model's of class index
        `label`, or of every class in turn."""
        return self._handle.sample(int(n), int(seed), None if label is None else int(label))

    def blend(self, a, b, steps=9, spherical=None):
        """`(pixel, latent)`: the pixel blend and the decoded code blend of two samples."""
        a, b = (_rows(np.reshape(v, (1, -1)), name)[0] for v, name in ((a, "a"), (b, "b")))
        return self._handle.blend(a, b, int(steps), spherical)

    def traverse(self, x, dims=None, deltas=None):
        """Decodes the code of `x` with each of `dims` shifted by each delta (by default the
        first code dimensions and the lecture's deltas, as `aekit plot` and the server)."""
        if dims is None:
            dims = list(range(min(self.latent, _aekit.DEFAULT_TRAVERSE_DIMS)))
        dims = [int(d) for d in dims]
        deltas = _aekit.DEFAULT_DELTAS if deltas is None else deltas
        x = _rows(np.reshape(x, (1, -1)), "x")[0]
        return self._handle.traverse(x, dims, [float(d) for d in deltas])

    def evaluate(self, X):
        """Reconstruction metrics of `X` (raw samples): MSE, SSE per sample, MAE, BCE."""
        return json.loads(self._handle.evaluate(_rows(X, "X")))

    def figure(self, kind="reconstructions", X=None, y=None):
        """One of the run's figures as an RGB array (`PIL.Image` via `figure_image`): of the
        raw rows `X` (and classes `y`) where given, else of the run's own test data where the
        figure draws data; the learning curves, prior samples and a prior's 2-D manifold need
        none, so every figure works for a run fitted from arrays."""
        if kind == "series" and X is not None:
            # A series run draws a series: n_points values, or n_points x n_channels.
            X = np.asarray(X, dtype=np.float32)
            X = np.ascontiguousarray(X[:, None] if X.ndim == 1 else X)
        else:
            X = None if X is None else _rows(X, "X")
        return self._handle.figure(kind, X, _class_indices(y))

    def figure_image(self, kind="reconstructions", X=None, y=None):
        from PIL import Image

        return Image.fromarray(self.figure(kind, X, y))

    @property
    def threshold(self):
        """The anomaly threshold stored with the run, or None."""
        return self._handle.threshold()

    def explore(self, X=None, y=None, height=640, port=0):
        """The latent explorer of this run inline in a notebook (a server of its own in this
        process, on a free port unless `port`, stopped with the kernel), mapping the raw rows
        `X` (classes `y`) or else the run's own test data. Returns an object a notebook shows
        as the explorer in an iframe; its `url` is the page's address. In a hosted notebook the
        address goes through its proxy: Colab's is found by itself; elsewhere set
        `AEKIT_EXPLORER_URL` to a template such as "/proxy/{port}/" (jupyter-server-proxy)."""
        X = None if X is None else _rows(X, "X")
        bound = self._handle.explore(X, _class_indices(y), "127.0.0.1", int(port))
        return Explorer(_explorer_url(bound), height)

    def to_onnx(self, path, part=None, threshold=None, score=None, force=False):
        """Writes the run as an ONNX model (opset 17, any batch size) with its preprocessing
        inside: `part` "encoder" (raw rows `x` to `code`), "decoder" (`z` to `output` in the
        raw scale), "reconstruct" (`x` to `reconstruction`, the default) or "score" (`x` to `score`,
        `feature_errors` and `anomaly`, thresholded at `threshold` or the stored threshold).
        A conditional model also takes the classes `y`. A typed table's rows are its columns'
        features (the model's metadata "aekit.columns" says where each column lies and how it
        is encoded) and its score graph gives `column_scores`, each column's share, in place
        of `feature_errors`. Returns `path`."""
        self._handle.to_onnx(os.fspath(path), part, threshold, score, force)
        return os.fspath(path)


class Explorer:
    """The explorer of a run, shown inline by a notebook (`_repr_html_`: an iframe)."""

    def __init__(self, url, height):
        self.url, self.height = url, int(height)

    def _repr_html_(self):
        import html

        return (f'<iframe src="{html.escape(self.url)}" width="100%" height="{self.height}" '
                'frameborder="0" allow="clipboard-write"></iframe>')

    def __repr__(self):
        return f"Explorer({self.url!r})"


def _explorer_url(port):
    """The address a notebook's browser reaches the explorer on port `port` by."""
    try:  # Colab serves the kernel's ports through a proxy of its own.
        from google.colab.output import eval_js

        return eval_js(f"google.colab.kernel.proxyPort({port})")
    except ImportError:
        pass
    template = os.environ.get("AEKIT_EXPLORER_URL")
    return template.format(port=port) if template else f"http://127.0.0.1:{port}/"


def _class_indices(y):
    """Class indices as the core takes them (int64), or None."""
    return None if y is None else np.ascontiguousarray(np.asarray(y), dtype=np.int64).reshape(-1)


def _is_table(X):
    """Whether `X` speaks the Arrow C stream interface (pyarrow, polars, pandas >= 2.2)."""
    return hasattr(type(X), "__arrow_c_stream__")


def _is_stream(X):
    """Whether `X` is data given a batch at a time: an iterator, a generator, a pyarrow
    RecordBatchReader — anything iterable without a length that is not an array or table."""
    if isinstance(X, (np.ndarray, list, tuple, str, bytes)) or hasattr(X, "__len__"):
        return False
    return hasattr(X, "__iter__") or hasattr(X, "__next__")


def _length(X):
    try:
        return len(X)
    except TypeError:
        return None


# Runs opened by BatchMapper, once per process (per cluster worker).
_OPENED = {}


class BatchMapper:
    """A run applied to a table a batch at a time where the batches are: on a cluster's workers.
    Picklable — it carries the run directory's path, and each process opens the run once — and
    callable on a pyarrow Table or RecordBatch (answering a pyarrow Table) or a pandas DataFrame
    (answering one, with the partition's index): the columns `keep` of the batch, then `z`
    (output="encode"), `x` ("reconstruct") or `score` ("score"), as `Run.encode_table`,
    `reconstruct_table` and `score_table` give them. For Ray Data,
    `ds.map_batches(BatchMapper(run_dir, keep=["id"]), batch_format="pyarrow")`; for Dask,
    `ddf.map_partitions(BatchMapper(run_dir, keep=["id"]))`. The run directory must be readable
    at the same path on every worker (a shared file system)."""

    def __init__(self, run_dir, output="score", keep=(), columns=None):
        if output not in ("encode", "reconstruct", "score"):
            raise ValueError(f"output={output!r}: expected 'encode', 'reconstruct' or 'score'")
        self.run_dir, self.output = os.fspath(run_dir), output
        self.keep, self.columns = list(keep), None if columns is None else list(columns)

    def _run(self):
        run = _OPENED.get(self.run_dir)
        if run is None:
            run = _OPENED[self.run_dir] = Run.open(self.run_dir)
        return run

    def __call__(self, batch):
        import pyarrow as pa

        run = self._run()
        pandas_index = getattr(batch, "index", None) if not _is_arrow(batch) else None
        if pandas_index is not None:
            # The partition's index goes back on the answer, not through the table.
            table = pa.Table.from_pandas(batch, preserve_index=False)
        else:
            table = pa.table(batch)
        name = {"encode": "z", "reconstruct": "x", "score": "score"}[self.output]
        if table.num_rows == 0:
            # An empty partition (Dask infers a result's columns from one) answers in kind.
            width = {"encode": run.latent, "reconstruct": run.input_dim, "score": None}[self.output]
            values = np.zeros((0,) if width is None else (0, width), np.float32)
            out = _output_table(table, self.keep, name, values)
        else:
            method = {"encode": run.encode_table, "reconstruct": run.reconstruct_table,
                      "score": run.score_table}[self.output]
            out = method(table, self.keep, self.columns)
        if pandas_index is None:
            return out
        frame = out.to_pandas()
        frame.index = pandas_index
        return frame


def _is_arrow(batch):
    return type(batch).__module__.startswith("pyarrow")


def _output_table(X, keep, name, values):
    """`values` (one row per row of the table `X`) as column `name` of a pyarrow Table, after
    the columns `keep` of `X`."""
    import pyarrow as pa

    kept = pa.table(X).select(list(keep)) if keep else None
    values = np.ascontiguousarray(values)
    if values.ndim == 1:
        column = pa.array(values)
    else:
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    if kept is None:
        return pa.table({name: column})
    return kept.append_column(name, column)


def _rows(X, name, columns=None, keep=()):
    """A C-contiguous float32 matrix, refusing what scikit-learn refuses (with its own
    messages when it is installed); a table's numeric columns (or `columns`), less the columns
    `keep` carried beside outputs, read by the core through the Arrow C stream interface."""
    if _is_table(X):
        return _aekit.table_rows(X, columns, _length(X), list(keep))
    if _image_shape(X) is not None:
        # Images ([n, C, H, W] or [n, H, W]) as rows; fit keeps their shape.
        X = np.asarray(X).reshape(len(X), -1)
    if (type(X) is np.ndarray and X.dtype == np.float32 and X.ndim == 2 and X.size
            and X.flags.c_contiguous and np.isfinite(X).all()):
        # Already what the core takes: scikit-learn's validation would cost more than a
        # one-row call into the core (84 against 110 µs); anything else gets its messages.
        return X
    if _check_array is not None:
        return np.ascontiguousarray(_check_array(X, dtype=np.float32, input_name=name))
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array")
    arr = np.asarray(X)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: values must be numbers ({e})") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"{name}: complex data is not supported")
    if arr.ndim == 1:
        raise ValueError(
            f"{name}: expected a 2-D array, got a 1-D one; reshape with X.reshape(-1, 1) for one "
            "feature or X.reshape(1, -1) for one sample"
        )
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got {arr.ndim} dimensions")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: found array with shape {arr.shape}; at least one sample and one feature are required")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: input contains NaN or infinity")
    return arr


def _same(a, b):
    return (list(a) == list(b)) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b


def _flag(name, value):
    """A setting as the command line spells it: `--name value`, a list comma-separated, `True`
    as the bare flag; `None` and `False` leave it out."""
    flag = "--" + name.replace("_", "-")
    if value is None or value is False:
        return []
    if value is True:
        return [flag]
    if isinstance(value, (list, tuple)):
        return [flag, ",".join(str(v) for v in value)] if len(value) else [flag]
    return [flag, str(value)]


def _image_shape(X):
    """One sample's [C, H, W] when `X` is an array of images ([n, C, H, W] or [n, H, W])."""
    if _is_table(X) or not hasattr(X, "ndim") or X.ndim not in (3, 4):
        return None
    return [1, *X.shape[1:]] if X.ndim == 3 else list(X.shape[1:])


class _CarriesDirectory:
    """Pickling for an estimator fitted into a directory: the state carries the directory's
    files, so a copy needs no disk. A class names the attribute that holds the directory
    (`_directory`), the state key of its files (`_files_key`), the attributes loaded from it
    (`_loaded`, left out of the state) and how they are loaded again (`_reopen(out)`)."""

    def __getstate__(self):
        parent = getattr(super(), "__getstate__", None)
        state = dict(parent()) if parent is not None else self.__dict__.copy()
        for name in self._loaded:
            state.pop(name, None)
        if self._directory in state:
            state[self._files_key] = _read_tree(state[self._directory])
        return state

    def __setstate__(self, state):
        files = state.pop(self._files_key, None)
        self.__dict__.update(state)
        if files is not None:
            out = tempfile.mkdtemp(prefix="aekit-")
            _write_tree(out, files)
            self._reopen(out)


def _marked_classes(y):
    """The classes of `y` in scikit-learn's semi-supervised convention (-1 in a numeric `y`
    marks a row without a label) and each row's class index, -1 for an unlabelled row."""
    labelled = y != -1 if y.dtype.kind in "iuf" else np.ones(y.shape[0], dtype=bool)
    classes = np.unique(y[labelled])
    targets = np.full(y.shape[0], -1, dtype=np.int64)
    targets[labelled] = np.searchsorted(classes, y[labelled])
    return classes, targets


class AutoEncoder(_CarriesDirectory, _TransformerMixin, _BaseEstimator):
    """An autoencoder as a scikit-learn transformer: `fit`, `transform` (codes),
    `inverse_transform` (decode), `predict` (reconstruction), `score_samples` (negative squared
    reconstruction error: higher is more normal, as scikit-learn's outlier scores) and `score`
    (their mean).

    A conditional VAE (`model="cvae"`) is fitted on `(X, y)`; its `transform`,
    `inverse_transform`, `predict` and `score_samples` then take the rows' labels as `y`, and
    `sample(n, label=...)` draws samples of one class. A semi-supervised VAE (`model="ssvae"`,
    Kingma et al.'s M2) is fitted on `(X, y)` with -1 marking rows without a label
    (`options={"labelled": N}` keeps N of the labels); `run_.class_probabilities(X)` gives its
    q(y|x), whose columns follow `classes_`, and its codes end with the same probabilities.

    Parameters are aekit's config keys: `model` ("dense", "vae", "conv", "cvae", ...), `hidden` (encoder
    widths), `latent`, `activation`, `noise` (e.g. "gaussian:0.3" for a denoising AE),
    `code_l1` (sparse), `contractive`, `dropout` (dense models: on every hidden layer while
    training), `beta` (VAE), `epochs`, `batch_size` (None: aekit's default, as on the command
    line), `optimizer`, `lr`,
    `scale` ("none", "standardize", "robust", "minmax", "unit"), `val_fraction`, `seed`, `device`
    ("cpu"), `verbose` (a tqdm bar when tqdm is installed), `callback` (called with each
    epoch's metrics as a dict), `run_dir` (where the run directory goes; a temporary one by
    default), `options` (any other setting of `aekit train`, by its flag's name with `_` for
    `-`, and the same values: e.g. `{"encoder": "conv:16:3,maxpool:2", "codes": 32}`; every
    variant's settings are reachable so, and the core refuses one the model does not take).
    """

    def __init__(self, model="dense", hidden=(64,), latent=8, activation="relu", noise=None,
                 code_l1=None, contractive=None, dropout=None, beta=None, epochs=20, batch_size=None,
                 optimizer="adam", lr=1e-3, scale="none", val_fraction=0.1, seed=42,
                 device="cpu", verbose=False, callback=None, run_dir=None, options=None):
        self.model = model
        self.hidden = hidden
        self.latent = latent
        self.activation = activation
        self.noise = noise
        self.code_l1 = code_l1
        self.contractive = contractive
        self.dropout = dropout
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.scale = scale
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.verbose = verbose
        self.callback = callback
        self.run_dir = run_dir
        self.options = options

    # The core computes in float32: codes and reconstructions are float32 whatever comes in.
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def _more_tags(self):  # scikit-learn before 1.6
        return {"preserves_dtype": [np.float32]}

    # -- fitting ---------------------------------------------------------------------------

    def _capabilities(self, config=None):
        """What the configured variant can do (the core's answer, never a list kept here)."""
        return json.loads(_aekit.model_capabilities(config or self._config()))

    # The estimator's parameters that are model settings, passed as the command line's flags.
    _MODEL_PARAMS = ("hidden", "latent", "activation", "noise", "code_l1", "contractive",
                     "dropout", "beta")

    def _model_flags(self):
        """`--model KIND` and the model parameters as flags: a parameter left at its default
        that the kind does not take is left out (the core decides which it takes); any other
        goes to the core, which refuses one the kind does not take, naming it."""
        import inspect

        defaults = {k: p.default for k, p in inspect.signature(type(self).__init__).parameters.items()}
        takes = dict(zip(self._MODEL_PARAMS, _aekit.model_takes(self.model, list(self._MODEL_PARAMS))))
        flags = ["--model", self.model]
        for name in self._MODEL_PARAMS:
            value = getattr(self, name)
            if takes[name] or not _same(value, defaults[name]):
                flags += _flag(name, value)
        for name, value in (self.options or {}).items():
            flags += _flag(name, value)
        return flags

    def _config(self):
        if self.device != "cpu":
            raise ValueError(f"device={self.device!r}: this build trains on the CPU only")
        # The samples come as an array, not a file: the run records a name that says so, and
        # command-line tools reading the run need their own --data.
        flags = [*self._data_flags(), *_flag("scale", self.scale),
                 *_flag("val_fraction", self.val_fraction), *_flag("epochs", int(self.epochs)),
                 # None: the library's default, the same as the command line's.
                 *_flag("batch_size", None if self.batch_size is None else int(self.batch_size)),
                 *_flag("optimizer", self.optimizer), *_flag("lr", float(self.lr)),
                 *_flag("seed", int(self.seed))]
        return _aekit.configure(flags + self._model_flags())

    def _data_flags(self):
        return ["--data", "npy:the-array-given-to-fit.npy"]

    def fit(self, X, y=None):
        if _is_stream(X):
            return self._fit_stream(X, y)
        # A table goes to the core as it is, which reads its columns where they lie.
        table = X if _is_table(X) else None
        shape = _image_shape(X)
        if table is None:
            X = _rows(X, "X")
        n = X.shape[0] if table is None else _length(table)
        labels = None
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != n:
                raise ValueError(f"y has {y.shape[0]} labels for {n} samples")
        config = self._config()
        capabilities = self._capabilities(config)
        if capabilities["conditional"] or capabilities["semi_supervised"]:
            # Conditional and semi-supervised models learn from the labels (the second from
            # as many as `labelled` says); other models ignore y.
            if y is None:
                raise ValueError(f"model={self.model!r} learns from the classes: fit(X, y) needs y")
            y = y.reshape(-1)
            if capabilities["semi_supervised"]:
                self.classes_, labels = _marked_classes(y)
            else:
                self.classes_, labels = np.unique(y, return_inverse=True)
                labels = labels.astype(np.int64).reshape(-1)
        if n is not None and n < 2:
            raise ValueError(f"X: n_samples={n}; fitting needs at least 2 samples (one to train on, one to validate)")
        return self._train(lambda out, on_epoch: _aekit.fit(
            config, X, labels, out, on_epoch, None, n, shape))

    def _fit_stream(self, batches, y):
        """Fits on data given a batch at a time (see the module's help)."""
        config = self._config()
        capabilities = self._capabilities(config)
        if y is not None or capabilities["conditional"] or capabilities["semi_supervised"]:
            raise ValueError(f"fit over batches is unsupervised: y is not taken (and model={self.model!r} needs it)")
        if _is_table(batches):
            batches = [batches]
        else:
            batches = (b if _is_table(b) else _rows(b, "X") for b in batches)
        return self._train(lambda out, on_epoch: _aekit.fit_batches(
            config, batches, out, on_epoch, None))

    def _train(self, fit):
        """Runs `fit(out, on_epoch)` of the core into the run directory, with the epochs'
        metrics delivered to `history_`, the progress bar and the callback; after Ctrl-C the
        best weights so far are kept."""
        out = self.run_dir or tempfile.mkdtemp(prefix="aekit-")
        if self.run_dir is None:
            shutil.rmtree(out)
        history = []
        bar = _progress_bar(self.epochs) if self.verbose else None

        def on_epoch(line):
            m = json.loads(line)
            history.append(m)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=m.get("train_loss"), val=m.get("val_loss"))
            if self.callback is not None:
                self.callback(m)

        try:
            fit(out, on_epoch)
        except KeyboardInterrupt:
            # The core stopped at a step boundary and kept the best weights so far.
            if os.path.exists(os.path.join(out, "model.safetensors")):
                self._set_fitted(out, history)
            raise
        finally:
            if bar is not None:
                bar.close()
        self._set_fitted(out, history)
        return self

    def _set_fitted(self, out, history):
        self.run_dir_ = out
        self.run_ = Run.open(out)
        self.n_features_in_ = self.run_.input_dim
        self.history_ = history
        self.threshold_ = self.run_.threshold

    def _check_fitted(self, X=None):
        if not hasattr(self, "run_"):
            from_sklearn = _not_fitted_error()
            raise from_sklearn(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' first.")
        if X is not None:
            X = _rows(X, "X")
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input")
            return X

    def _labels(self, y):
        """A conditional model's labels `y` as the class indices it was fitted with."""
        if y is None or not hasattr(self, "classes_"):
            return None
        y = np.asarray(y).reshape(-1)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[idx] == y):
            raise ValueError(f"y has labels the model was not fitted with (it knows {list(self.classes_)})")
        return idx

    def transform(self, X, y=None):
        X = self._check_fitted(X)
        return self.run_.encode(X, self._labels(y))

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X, y)

    def inverse_transform(self, Z, y=None):
        self._check_fitted()
        return self.run_.decode(Z, self._labels(y))

    def predict(self, X, y=None):
        """Reconstructions of `X`, in its own scale."""
        X = self._check_fitted(X)
        return self.run_.reconstruct(X, self._labels(y))

    def sample(self, n=16, seed=0, label=None):
        """`n` samples decoded from prior draws (VAE-family models); for `model="cvae"`, of
        class `label` (one of `classes_`), or of every class in turn."""
        self._check_fitted()
        index = None if label is None else int(self._labels([label])[0])
        return self.run_.sample(n, seed, index)

    def score_samples(self, X, y=None):
        X = self._check_fitted(X)
        return -self.run_.score_samples(X, self._labels(y))

    def score(self, X, y=None):
        return float(np.mean(self.score_samples(X)))

    def explore(self, X=None, y=None, **kw):
        """The fitted model's latent explorer inline in a notebook (see `Run.explore`)."""
        self._check_fitted()
        # A conditional model's labels as its class indices; others colour the map as given.
        labels = self._labels(y) if hasattr(self, "classes_") else y
        return self.run_.explore(X, labels, **kw)

    def to_onnx(self, path, part=None, **kw):
        """Writes the fitted model as an ONNX model (see `Run.to_onnx`)."""
        self._check_fitted()
        return self.run_.to_onnx(path, part, **kw)

    def save(self, path):
        """Writes the run directory to `path` (readable by `aekit eval`, `aekit serve`, ...)."""
        self._check_fitted()
        shutil.copytree(self.run_dir_, os.fspath(path))
        return os.fspath(path)

    # -- pickling: the state carries the run directory's files (see _CarriesDirectory) -------

    _directory = "run_dir_"
    _files_key = "_run_files"
    _loaded = ("run_",)

    def _reopen(self, out):
        self.run_dir_ = out
        self.run_ = Run.open(out)


class AutoEncoderClassifier(_CarriesDirectory, _ClassifierMixin, _BaseEstimator):
    """Unsupervised pretraining as a scikit-learn classifier: `autoencoder` (an `AutoEncoder`;
    a default one when None) is fitted on every row of `X`, then its encoder with a `head`
    ("linear", or "mlp:WIDTH[,WIDTH...]") is fine-tuned on the labelled rows — the head alone
    for the first `freeze_epochs` of `epochs`, then every layer (`batch_size`, `lr`, `seed`).
    As scikit-learn's semi-supervised estimators, `fit(X, y)` takes `-1` in `y` for an
    unlabelled row. The fitted classifier is an aekit classifier run (`.classifier_dir_`), the
    format `aekit finetune` writes and `aekit serve` predicts with.
    """

    def __init__(self, autoencoder=None, head="linear", freeze_epochs=0, epochs=30, batch_size=64,
                 lr=1e-3, seed=42):
        self.autoencoder = autoencoder
        self.head = head
        self.freeze_epochs = freeze_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def fit(self, X, y):
        X = _rows(X, "X")
        y = np.asarray(y)
        try:  # scikit-learn's own refusals of targets that are not classes, where it is installed
            from sklearn.utils.multiclass import check_classification_targets
            from sklearn.utils.validation import column_or_1d
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        except ImportError:
            if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
                raise ValueError("Unknown label type: continuous: y holds classes, -1 for an unlabelled row")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y has shape {y.shape} for {X.shape[0]} samples: one label per row, -1 for an unlabelled row")
        self.classes_, targets = _marked_classes(y)
        if self.classes_.shape[0] < 2:
            raise ValueError(f"y has {self.classes_.shape[0]} class(es) among its labelled rows: a classifier needs at least 2")
        if self.autoencoder is None:
            autoencoder = AutoEncoder()
        else:
            from copy import deepcopy
            autoencoder = deepcopy(self.autoencoder)
        self.autoencoder_ = autoencoder.fit(X)
        out = tempfile.mkdtemp(prefix="aekit-classifier-")
        _aekit.finetune(self.autoencoder_.run_dir_, X, targets, out, str(self.head),
                        int(self.freeze_epochs), int(self.epochs), int(self.batch_size),
                        float(self.lr), int(self.seed), [str(c) for c in self.classes_])
        self._set_fitted(out)
        return self

    def _set_fitted(self, out):
        self.classifier_dir_ = out
        self._handle = _aekit.ClassifierHandle.open(out)
        self._run = None  # the classifier run as a Run, opened by the first `encode`
        self.history_ = json.loads(self._handle.history())
        self.n_features_in_ = self.autoencoder_.n_features_in_

    def _check_fitted(self, X):
        if not hasattr(self, "_handle"):
            from_sklearn = _not_fitted_error()
            raise from_sklearn(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' first.")
        X = _rows(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input")
        return X

    def predict_proba(self, X):
        X = self._check_fitted(X)
        return self._handle.probabilities(X)

    def predict(self, X):
        p = self.predict_proba(X)
        return self.classes_[np.argmax(p, axis=1)]

    def encode(self, X):
        """The fine-tuned encoder's codes of `X`."""
        X = self._check_fitted(X)
        if self._run is None:
            self._run = Run.open(self.classifier_dir_)
        return self._run.encode(X)

    _directory = "classifier_dir_"
    _files_key = "_classifier_files"
    _loaded = ("_handle", "_run")
    _reopen = _set_fitted


def _read_tree(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n == ".lock":
                continue
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root)] = f.read()
    return files


def _write_tree(root, files):
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def _not_fitted_error():
    try:
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    except ImportError:
        return AttributeError


def _progress_bar(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="epoch")


def _check_contamination(contamination):
    """Refused before training by the core's rule: 0 puts the threshold at the largest
    training score (`aekit score --contamination 0`)."""
    _aekit.check_contamination(float(contamination))


class AnomalyDetector(AutoEncoder):
    """An autoencoder anomaly detector with PyOD's interface: `contamination`, `fit`,
    `decision_function` (squared reconstruction error, higher is more anomalous),
    `predict` (1 = anomaly), `predict_proba` (`method="linear"` or `"unify"`), and the fitted
    `decision_scores_`, `threshold_`, `labels_` — the same scores as `aekit score`.
    """

    def __init__(self, contamination=0.1, model="dense", hidden=(64,), latent=8,
                 activation="relu", noise=None, code_l1=None, contractive=None, dropout=None,
                 beta=None, epochs=20, batch_size=None, optimizer="adam", lr=1e-3, scale="none",
                 val_fraction=0.1, seed=42, device="cpu", verbose=False, callback=None,
                 run_dir=None, options=None):
        super().__init__(model=model, hidden=hidden, latent=latent, activation=activation,
                         noise=noise, code_l1=code_l1, contractive=contractive, dropout=dropout,
                         beta=beta, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                         scale=scale, val_fraction=val_fraction, seed=seed, device=device,
                         verbose=verbose, callback=callback, run_dir=run_dir, options=options)
        self.contamination = contamination

    def fit(self, X, y=None):
        if _is_stream(X):
            raise ValueError("AnomalyDetector.fit scores its training rows again (decision_scores_): give X as an array or a table, not a stream of batches")
        _check_contamination(self.contamination)
        super().fit(X, y)
        self.decision_scores_ = self.decision_function(X)
        self.threshold_ = _aekit.threshold_of(np.asarray(self.decision_scores_, dtype=np.float64),
                                              float(self.contamination))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def decision_function(self, X):
        X = self._check_fitted(X)
        return self.run_.score_samples(X)

    def predict(self, X):
        return (self.decision_function(X) > self.threshold_).astype(int)

    def predict_proba(self, X, method="linear"):
        """`[P(normal), P(anomaly)]` per sample from the training scores, as PyOD."""
        test = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            lo, hi = train.min(), train.max()
            p = np.clip((test - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        elif method == "unify":
            from math import erf, sqrt

            mu, sigma = train.mean(), train.std()
            z = (test - mu) / (sigma * sqrt(2) if sigma > 0 else 1.0)
            p = np.clip(np.array([erf(v) for v in z]), 0, 1)
        else:
            raise ValueError(f"method must be 'linear' or 'unify', got {method!r}")
        return np.column_stack([1 - p, p])

    def fit_predict(self, X, y=None):
        return self.fit(X, y).labels_



class TableDetector(AnomalyDetector):
    """Anomaly detection on a typed table, as `aekit score` does on one: `X` is a pandas
    DataFrame (pandas >= 2.2), a pyarrow or polars table — anything with `__arrow_c_stream__` —
    whose columns are numbers, booleans, strings or categories, with missing values. Each
    column is reconstructed by its own likelihood (squared error on the standardised number,
    cross-entropy on a boolean or a category's levels), missing values left out of the loss;
    `decision_function` is the sum of the columns' weighted losses, and
    `score_samples(X, explain=True)` also says which columns make each row's score (`explain`
    K: the K largest). Columns as the command line's flags: `categorical` (numbers read as
    categories), `ignore_columns`, `column_weights` ({column: weight}), `missing`
    ("mask" or "impute"), `min_category_count`. Values of a category never seen in fitting
    are read as its "(other)" level; `unseen_` lists them after each call.
    """

    def __init__(self, contamination=0.1, categorical=None, ignore_columns=None,
                 column_weights=None, missing=None, min_category_count=None, model="dense",
                 hidden=(64,), latent=8, activation="relu", dropout=None, epochs=50,
                 batch_size=None, optimizer="adam", lr=1e-3, scale="auto", val_fraction=0.1,
                 seed=42, device="cpu", verbose=False, callback=None, run_dir=None,
                 options=None):
        super().__init__(contamination=contamination, model=model, hidden=hidden, latent=latent,
                         activation=activation, dropout=dropout, epochs=epochs,
                         batch_size=batch_size, optimizer=optimizer, lr=lr, scale=scale,
                         val_fraction=val_fraction, seed=seed, device=device, verbose=verbose,
                         callback=callback, run_dir=run_dir, options=options)
        self.categorical = categorical
        self.ignore_columns = ignore_columns
        self.column_weights = column_weights
        self.missing = missing
        self.min_category_count = min_category_count

    _MODEL_PARAMS = ("hidden", "latent", "activation", "dropout")

    @staticmethod
    def _table(X):
        if not _is_table(X):
            raise TypeError("TableDetector takes a table (a pandas DataFrame, a pyarrow or polars table), not an array: its columns' types say how each is read")
        return X

    def _data_flags(self):
        flags = ["--data", "csv:the-table-given-to-fit.csv"]
        if self.categorical:
            flags += ["--categorical", ",".join(self.categorical)]
        if self.ignore_columns:
            flags += ["--ignore-columns", ",".join(self.ignore_columns)]
        if self.column_weights:
            flags += ["--column-weights", ",".join(f"{k}={float(v)}" for k, v in self.column_weights.items())]
        if self.missing is not None:
            flags += _flag("missing", self.missing)
        if self.min_category_count is not None:
            flags += _flag("min_category_count", int(self.min_category_count))
        return flags

    def fit(self, X, y=None):
        _check_contamination(self.contamination)
        X = self._table(X)
        config = self._config()
        notes = []
        self._train(lambda out, on_epoch: notes.extend(_aekit.fit_table(config, X, out, on_epoch)))
        self.fit_notes_ = notes
        self.decision_scores_ = self.decision_function(X)
        self.threshold_ = _aekit.threshold_of(np.asarray(self.decision_scores_, dtype=np.float64),
                                              float(self.contamination))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _set_fitted(self, out, history):
        super()._set_fitted(out, history)
        self.n_features_in_ = None  # a table's columns, not a width

    def decision_function(self, X):
        self._check_fitted()
        scores, _, self.unseen_ = self.run_._handle.score_table(self._table(X), None)
        return scores

    def reconstruct(self, X, y=None):
        """The rows of `X` as the model gives them back, in their columns' types: a pandas
        DataFrame where pandas is installed, else a dict of lists (`aekit reconstruct`'s
        rows). With `missing="impute"` the given values are kept and the missing filled."""
        self._check_fitted()
        columns = dict(self.run_._handle.reconstruct_table(self._table(X)))
        try:
            import pandas as pd
        except ImportError:
            return columns
        return pd.DataFrame(columns)

    def figure(self, X=None, kind="columns"):
        """One of the run's figures as an RGB array, drawn from the rows of the table `X`:
        "columns" shows each column's mean share of the scores and the highest-scored rows as
        a heat map of their columns' shares; "codes" the 2-D code map; "curves" the learning
        curves (no `X` needed)."""
        self._check_fitted()
        return self.run_._handle.table_figure(kind, None if X is None else self._table(X))

    def score_samples(self, X, y=None, explain=False):
        """Minus each row's score (scikit-learn's sign: higher is more normal); with
        `explain` (True: every column, K: the K largest) also each row's columns as
        `{"column", "value", "reconstructed", "share"}` dicts, largest share first — the
        shares of the score, which sum to it, as `aekit score --explain K` writes them."""
        self._check_fitted()
        k = None if explain is False else (0 if explain is True else int(explain))
        scores, explained, self.unseen_ = self.run_._handle.score_table(self._table(X), k)
        if k is None:
            return -scores
        keys = ("column", "value", "reconstructed", "share")
        return -scores, [[dict(zip(keys, c)) for c in row] for row in explained]


class SeriesDetector(AnomalyDetector):
    """Anomaly detection on a time series, point by point, as `aekit score` does on a series
    run: the series is cut into windows of `window` steps (every `stride` steps, the last
    ending at the last point), a model (`model="conv1d"`, the keras.io recipe, by default;
    "gru", "dense", ...) is fitted on the windows of the first `train_points` points (all of
    them when None), and each point's `decision_function` is its squared error in the windows
    that cover it, reduced by `point_score` ("mean", "max", or "window": the mean of their
    whole scores). `X` is one series in time order: an array of `n_points` values or of
    `n_points × n_channels`, or a table of value columns. `threshold_` leaves `contamination`
    of the training points' scores above it (0: the largest of them); `predict` gives 1 for a
    point above it. The scaling (`scale`, per channel) is fitted on the training points.
    """

    def __init__(self, window=64, stride=1, train_points=None, point_score="mean",
                 contamination=0.1, model="conv1d", hidden=(64,), latent=8, activation="relu",
                 dropout=None, epochs=20, batch_size=None, optimizer="adam", lr=1e-3,
                 scale="standardize", val_fraction=0.1, seed=42, device="cpu", verbose=False,
                 callback=None, run_dir=None, options=None):
        super().__init__(contamination=contamination, model=model, hidden=hidden, latent=latent,
                         activation=activation, dropout=dropout, epochs=epochs,
                         batch_size=batch_size, optimizer=optimizer, lr=lr, scale=scale,
                         val_fraction=val_fraction, seed=seed, device=device, verbose=verbose,
                         callback=callback, run_dir=run_dir, options=options)
        self.window = window
        self.stride = stride
        self.train_points = train_points
        self.point_score = point_score

    _MODEL_PARAMS = ("hidden", "latent", "activation", "dropout")

    @staticmethod
    def _points(X):
        """One series as `points × channels` float32, in time order."""
        if _is_table(X):
            X = _rows(X, "X")
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"X has shape {X.shape}: a series is n_points values, or n_points x n_channels")
        return np.ascontiguousarray(X)

    def _data_flags(self):
        flags = ["--data", "npy:the-series-given-to-fit.npy", *_flag("window", int(self.window)),
                 *_flag("stride", int(self.stride))]
        if self.train_points is not None:
            flags += _flag("train_points", int(self.train_points))
        return flags

    def fit(self, X, y=None):
        _check_contamination(self.contamination)
        X = self._points(X)
        config = self._config()
        self._train(lambda out, on_epoch: _aekit.fit_series(config, X, None, out, on_epoch))
        training = min(self.train_points or len(X), len(X))
        scores, threshold = self.run_._handle.point_scores(X, self.point_score, training,
                                                           float(self.contamination))
        self.decision_scores_ = scores[:training]
        self.threshold_ = threshold
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _set_fitted(self, out, history):
        super()._set_fitted(out, history)
        # A window holds n_channels x window values; a point, one per channel.
        self.n_features_in_ = self.run_.input_dim // int(self.window)

    def decision_function(self, X):
        self._check_fitted()
        X = self._points(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} channels, but {type(self).__name__} is expecting {self.n_features_in_}")
        scores, _ = self.run_._handle.point_scores(X, self.point_score, 0, 0.0)
        return scores

    def score_samples(self, X, y=None):
        return -self.decision_function(X)

    def figure(self, X):
        """The series figure of `X` as an RGB array: values and reconstruction above, point
        scores below with the threshold the run stored (mean point scores, contamination 0.1),
        flagged spans shaded."""
        self._check_fitted()
        return self.run_.figure("series", self._points(X))
