"""ONNX export checked by ONNX Runtime: every variant family, every part, against aekit's own
answers on the same rows (the CLI's encode, decode, reconstruct and score), and the ONNX
checker. Needs `onnx` and `onnxruntime` (CI installs them) and the release binary."""

import json
import os
import subprocess

import numpy as np
import pytest

import aekit

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("AEKIT_BIN", os.path.join(ROOT, "target", "release", "aekit"))

# Every variant family and every layer kind; the activations, scalings and outputs vary.
RUNS = {
    "dense": ["--hidden", "32,16", "--latent", "4", "--activation", "elu", "--scale", "standardize"],
    "dense-acts": ["--hidden", "24,12,8", "--encoder-activations", "gelu,silu,leaky-relu",
                   "--latent", "3", "--activation", "tanh", "--code-activation", "sigmoid"],
    "residual": ["--hidden", "16", "--latent", "3", "--residual"],
    "conv": ["--model", "conv", "--encoder", "conv:8:3:s2,avgpool:2,conv:4:3:valid:tanh,dense:6",
             "--decoder", "dense:36,reshape:4x3x3,up:7x7:bilinear,convt:8:3:s2,convt:4:5:s2:valid:op1,conv:1:5:valid"],
    "conv-pool-up": ["--model", "conv", "--encoder", "conv:4:3,maxpool:2,conv:4:3:s2:relu",
                     "--decoder", "up:2,conv:4:3:gelu,up:2,conv:1:3"],
    "vae": ["--model", "vae", "--hidden", "24", "--latent", "3", "--scale", "minmax", "--loss", "mse"],
    "conv-vae": ["--model", "vae", "--encoder", "conv:8:3:s2,conv:4:3:s2", "--hidden", "16", "--latent", "2"],
    "vqvae": ["--model", "vqvae", "--encoder", "conv:8:3:s2,conv:4:1", "--codes", "16"],
    "cvae": ["--model", "cvae", "--hidden", "24", "--latent", "3"],
}


def _close(got, expected, what):
    """≤ 1e-5 of the largest magnitude of the expected tensor (float32 against aekit's own
    float32 kernels, which sum in other orders)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape, f"{what}: {got.shape} against {expected.shape}"
    scale = max(float(np.abs(expected).max()), 1e-6)
    err = float(np.abs(got - expected).max()) / scale
    print(f"{what}: {err:.1e}")
    assert err <= 1e-5, f"{what}: relative difference {err:.2e}"
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if not os.path.exists(BINARY):
        pytest.skip(f"{BINARY} not built (cargo build --release)")
    d = tmp_path_factory.mktemp("onnx")
    x, y = aekit.datasets.shapes(300, seed=3)
    # Byte images, so that a run's preprocessing (scaling by 1/255) is part of each graph.
    images = np.round(x.reshape(-1, 1, 28, 28) * 255).astype(np.uint8)
    np.savez(d / "train.npz", x=images[:240], y=y[:240])
    np.savez(d / "test.npz", x=images[240:], y=y[240:])
    return d, images[240:].reshape(60, -1).astype(np.float32), y[240:].astype(np.int64)


def _aekit(*args):
    subprocess.run([BINARY, *map(str, args)], check=True, capture_output=True)


@pytest.mark.parametrize("name", list(RUNS))
def test_every_part_of_every_family_runs_in_onnx_runtime_as_in_aekit(data, name):
    d, x_raw, y = data
    run = d / name
    _aekit("train", "--data", f"npz:{d / 'train.npz'}", "--test-data", f"npz:{d / 'test.npz'}",
           *RUNS[name], "--epochs", "1", "--seed", "2", "--quiet", "--no-report", "--out", run)
    conditional = name == "cvae"
    feed_y = {"y": y} if conditional else {}

    def session(part):
        path = aekit.Run.open(run).to_onnx(d / f"{name}-{part}.onnx", part=part)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        return ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    # Encoder: raw rows in, codes out (and a codebook model's indices).
    _aekit("encode", run, "--out", d / f"{name}-z.npy")
    codes = np.load(d / f"{name}-z.npy")
    enc = session("encoder")
    outs = {o.name: v for o, v in zip(enc.get_outputs(), enc.run(None, {"x": x_raw, **feed_y}))}
    _close(outs["code"], codes, f"{name} encoder")
    if name == "vqvae":
        _aekit("encode", run, "--indices", "--out", d / f"{name}-i.npy")
        assert (outs["indices"] == np.load(d / f"{name}-i.npy").astype(np.int64)).all()

    # Reconstruct: raw in, raw out.
    _aekit("reconstruct", run, "--raw", "--out", d / f"{name}-r.npy", "--png", d / f"{name}.png")
    rec = session("reconstruct").run(None, {"x": x_raw, **feed_y})[0]
    _close(rec, np.load(d / f"{name}-r.npy"), f"{name} reconstruct")

    # Decoder: codes in, raw out (a conditional model's under class 1).
    dec = session("decoder")
    if conditional:
        _aekit("decode", run, "--codes", d / f"{name}-z.npy", "--class", 1, "--raw",
               "--out", d / f"{name}-d.npy")
        out = dec.run(None, {"z": codes, "y": np.ones(len(codes), np.int64)})[0]
    else:
        _aekit("decode", run, "--codes", d / f"{name}-z.npy", "--raw", "--out", d / f"{name}-d.npy")
        out = dec.run(None, {"z": codes})[0]
    _close(out, np.load(d / f"{name}-d.npy"), f"{name} decoder")

    # Score: the stored threshold (the CLI fits the same one) flags the same rows.
    _aekit("score", run, "--out", d / f"{name}-s.json")
    expected = json.loads((d / f"{name}-s.json").read_text())
    sc = session("score")
    score, errors, anomaly = sc.run(["score", "feature_errors", "anomaly"], {"x": x_raw, **feed_y})
    _close(score, expected["scores"], f"{name} score")
    _close(errors.sum(1), score, f"{name} feature errors")
    meta = {p.key: p.value for p in onnx.load(d / f"{name}-score.onnx").metadata_props}
    threshold = float(meta["aekit.threshold"])
    assert threshold == pytest.approx(expected["threshold"], rel=1e-12)
    # Rows within float32 rounding of the threshold may fall either side; none other may.
    near = np.abs(np.asarray(expected["scores"]) - threshold) <= 1e-5 * threshold
    assert ((anomaly == np.asarray(expected["anomaly"])) | near).all()
    assert meta["aekit.kind"] == run_kind(run) and meta["aekit.score"] == "squared-error"


def run_kind(run):
    return json.loads((run / "config.json").read_text())["model"]["kind"]


def test_refusals_name_the_problem_and_leave_nothing(data, tmp_path):
    d, x_raw, _ = data
    run = tmp_path / "run"
    _aekit("train", "--data", f"npz:{d / 'train.npz'}", "--hidden", "8", "--latent", "2",
           "--epochs", "1", "--quiet", "--no-report", "--out", run)
    r = aekit.Run.open(run)
    out = tmp_path / "m.onnx"
    r.to_onnx(out, part="encoder")
    with pytest.raises(ValueError, match="already exists"):
        r.to_onnx(out)
    r.to_onnx(out, force=True)
    with pytest.raises(ValueError, match="part 'middle': expected one of encoder, decoder"):
        r.to_onnx(tmp_path / "x.onnx", part="middle")
    with pytest.raises(ValueError, match="negative-elbo"):
        r.to_onnx(tmp_path / "x.onnx", part="score", threshold=1.0, score="negative-elbo")
    assert not (tmp_path / "x.onnx").exists()
    # An estimator exports as its run does, with a threshold of its own.
    X = x_raw / 255.0
    est = aekit.AutoEncoder(hidden=(8,), latent=2, epochs=1, seed=1).fit(X)
    path = est.to_onnx(tmp_path / "est.onnx", part="score", threshold=0.5)
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    _close(s.run(["score"], {"x": X.astype(np.float32)})[0], est.run_.score_samples(X), "estimator score")


def _typed_rows(frame, columns):
    """A table's rows as a typed run's graph takes them, made from the model's metadata alone:
    numbers in their units, booleans 0/1, a category's one-hot (an unknown value: the last
    level, "(other)"), NaN for every feature of a missing value."""
    width = sum(c["width"] for c in columns)
    x = np.zeros((len(frame), width), np.float32)
    for c in columns:
        values, start = frame[c["name"]], c["start"]
        if c["kind"] == "categorical":
            levels = c["levels"]
            for i, v in enumerate(values):
                if v is None or (isinstance(v, float) and np.isnan(v)):
                    x[i, start:start + c["width"]] = np.nan
                else:
                    at = levels.index(str(v)) if str(v) in levels else len(levels) - 1
                    x[i, start + at] = 1.0
        else:
            x[:, start] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return x


@pytest.mark.parametrize("model", ["dense", "vae"])
def test_a_typed_table_scores_and_reconstructs_in_onnx_runtime_as_in_aekit(tmp_path, model):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    v = rng.normal(0, 1, 300)
    frame = pd.DataFrame({"v": v, "sign": np.where(v < 0, "neg", "pos"), "flag": v > 1,
                          "color": rng.choice(["red", "green", "blue"], 300)})
    frame.loc[::10, "v"] = np.nan
    frame.loc[5::25, "color"] = None
    det = aekit.TableDetector(model=model, hidden=(16,), latent=3, epochs=20, val_fraction=0.0,
                              seed=1).fit(frame)
    score_path = det.to_onnx(tmp_path / "score.onnx", "score")
    graph = onnx.load(score_path)
    onnx.checker.check_model(graph)
    meta = {p.key: p.value for p in graph.metadata_props}
    columns = json.loads(meta["aekit.columns"])["columns"]
    x = _typed_rows(frame, columns)
    assert np.isnan(x).any(), "missing values reach the graph as NaN"
    score, shares, anomaly = ort.InferenceSession(score_path).run(None, {"x": x})
    _close(score, det.decision_function(frame), f"typed {model} score")
    _, explained = det.score_samples(frame, explain=True)
    order = [c["name"] for c in columns]
    expected = np.array([[next(c["share"] for c in row if c["column"] == name) for name in order]
                         for row in explained])
    _close(shares, expected, "typed column shares")
    assert (anomaly == (score > float(meta["aekit.threshold"]))).all()

    rec_path = det.to_onnx(tmp_path / "rec.onnx", "reconstruct")
    (rec,) = ort.InferenceSession(rec_path).run(None, {"x": x})
    decoded = det.reconstruct(frame)
    by_name = {c["name"]: c for c in columns}
    _close(rec[:, by_name["v"]["start"]], decoded["v"].to_numpy(np.float64), "typed numbers")
    colour = by_name["color"]
    probs = rec[:, colour["start"]:colour["start"] + colour["width"]]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert [colour["levels"][i] for i in probs.argmax(axis=1)] == list(decoded["color"])
    assert list(rec[:, by_name["flag"]["start"]] >= 0.5) == list(decoded["flag"])
