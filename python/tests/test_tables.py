"""TableDetector: a typed table (numbers, booleans, strings, missing values) from pandas,
scored and explained as `aekit score --explain` does."""

import numpy as np
import pytest

import aekit

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")


def mixed(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    frame = pd.DataFrame({
        "x": x,
        "sign": np.where(x < 0, "neg", "pos"),
        "flag": x > 1,
        "color": rng.choice(["red", "green", "blue"], n),
    })
    frame.loc[::10, "x"] = np.nan
    return frame


def test_fits_scores_and_explains_a_typed_frame():
    frame = mixed()
    det = aekit.TableDetector(hidden=(32,), latent=4, epochs=60, val_fraction=0.0, seed=1).fit(frame)
    assert det.decision_scores_.shape == (300,)
    assert np.isfinite(det.decision_scores_).all()
    # A row whose sign contradicts its number scores above every row of the table.
    odd = frame.head(1).copy()
    odd["x"] = 2.5
    odd["sign"] = "neg"
    odd["flag"] = True
    assert det.decision_function(odd)[0] > det.decision_scores_.max()
    scores, explained = det.score_samples(odd, explain=1)
    assert scores[0] == -det.decision_function(odd)[0]
    assert explained[0][0]["column"] == "sign"
    assert explained[0][0]["value"] == "neg"
    every = det.score_samples(odd, explain=True)[1][0]
    assert [c["column"] for c in every] != [] and abs(sum(c["share"] for c in every) + scores[0]) < 1e-9

    # The columns figure: the flagged rows' bars in the figures' red; curves need no rows; the
    # columns figure of a table fitted from memory needs its rows given.
    image = det.figure(pd.concat([frame, odd], ignore_index=True))
    assert image.dtype == np.uint8 and image.shape[1] >= 960 and image.shape[2] == 3
    assert (image == np.array([214, 39, 40], dtype=np.uint8)).all(axis=2).sum() > 100
    assert det.figure(kind="curves").shape[2] == 3
    with pytest.raises(ValueError, match="pass X"):
        det.figure()


def test_unseen_categories_are_read_as_other_and_reported():
    det = aekit.TableDetector(hidden=(16,), latent=2, epochs=2, seed=0).fit(mixed())
    other = mixed(5, seed=1)
    other.loc[0, "color"] = "teal"
    scores = det.decision_function(other)
    assert np.isfinite(scores).all()
    assert det.unseen_ == ["column 'color': 1 value(s) never seen in training (e.g. 'teal') read as '(other)'"]


def test_refuses_arrays_and_changed_types():
    det = aekit.TableDetector(epochs=1).fit(mixed())
    with pytest.raises(TypeError, match="takes a table"):
        det.decision_function(np.zeros((2, 4), dtype=np.float32))
    changed = mixed(5).assign(sign=1.0)
    with pytest.raises(ValueError, match="column 'sign' is Float64 here and was"):
        det.decision_function(changed)


def test_reconstructs_rows_in_their_types_and_imputes_the_missing():
    frame = mixed()
    det = aekit.TableDetector(hidden=(32,), latent=4, epochs=60, val_fraction=0.0, seed=1,
                              missing="impute").fit(frame)
    rows = det.reconstruct(frame)
    assert list(rows.columns) == ["x", "sign", "flag", "color"]
    assert rows["sign"].isin(["neg", "pos"]).all()
    assert rows["flag"].dtype == bool
    given = frame["x"].notna()
    # Given values kept (as float32), missing ones filled.
    assert np.array_equal(rows["x"][given].to_numpy(), frame["x"][given].to_numpy().astype(np.float32).astype(np.float64))
    assert rows["x"].notna().all()
