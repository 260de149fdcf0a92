"""aekit.AutoEncoderClassifier: unsupervised pretraining on every row, fine-tuning on the
labelled ones (-1 marks an unlabelled row), scikit-learn's classifier protocol, pickling, and
the classifier run `aekit serve` and `aekit finetune` share."""
import pickle

import numpy as np
import pytest

import aekit


def small(**kw):
    ae = aekit.AutoEncoder(hidden=(64,), latent=8, epochs=5, seed=0)
    settings = {"head": "mlp:32", "epochs": 40, "seed": 0, **kw}
    return aekit.AutoEncoderClassifier(ae, **settings)


def test_few_labels_and_many_unlabelled_rows_classify_the_shapes():
    X, y = aekit.datasets.shapes(1200, seed=0)
    Xt, yt = aekit.datasets.shapes(400, seed=1)
    partial = y.copy()
    partial[100:] = -1  # 100 labelled rows; the autoencoder sees all 1,200
    clf = small().fit(X, partial)
    assert list(clf.classes_) == [0, 1, 2, 3]
    assert clf.score(Xt, yt) > 0.85
    p = clf.predict_proba(Xt)
    assert p.shape == (400, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(clf.predict(Xt), clf.classes_[p.argmax(axis=1)])
    info = aekit._aekit.ClassifierHandle.open(clf.classifier_dir_).info()
    assert '"train_rows":100' in info
    assert len(clf.history_) == 40
    # The fine-tuned encoder's codes differ from the pretrained autoencoder's.
    assert not np.allclose(clf.encode(Xt[:5]), clf.autoencoder_.transform(Xt[:5]))


def test_string_labels_and_a_pickled_copy_predict_the_same():
    X, y = aekit.datasets.shapes(600, seed=0)
    names = np.array(["circle", "square", "triangle", "cross"])[y]
    clf = small().fit(X, names)
    assert set(clf.predict(X[:50])) <= set(names)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X[:50]), clf.predict_proba(X[:50]))


def test_bad_labels_are_refused_with_one_line():
    X, y = aekit.datasets.shapes(200, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        small().fit(X, np.full(200, -1))
    with pytest.raises(ValueError, match="one label per row"):
        small().fit(X, y[:10])
    with pytest.raises(ValueError, match="head 'conv'"):
        small(head="conv").fit(X, y)
    bad = y.copy()
    bad[3] = -2
    with pytest.raises(ValueError, match="row 3"):
        aekit._aekit.finetune(small().fit(X, y).autoencoder_.run_dir_, X, bad, "/tmp/never",
                              "linear", 0, 1, 64, 1e-3, 0, None)


def test_check_estimator_passes_but_for_the_listed_checks():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import check_estimator
    if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 6):
        pytest.skip("expected_failed_checks needs scikit-learn 1.6")
    est = aekit.AutoEncoderClassifier(
        aekit.AutoEncoder(hidden=(8,), latent=2, epochs=2, val_fraction=0.0), epochs=5)
    expected = {
        # -1 marks an unlabelled row (scikit-learn's semi-supervised convention), so labels
        # {-1, 1} are one class and unlabelled rows, not two classes.
        "check_classifiers_classes": "-1 marks unlabelled rows",
        # A neural network fitted for a few epochs on the checks' tiny random sets does not
        # reach the accuracy these checks ask of a converged classifier.
        "check_classifiers_train": "few epochs on tiny sets",
        "check_classifiers_one_label_sample_weights": "no sample weights",
    }
    failed = [r for r in check_estimator(est, on_fail=None, expected_failed_checks=expected)
              if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]


def test_a_semi_supervised_vae_learns_from_rows_marked_minus_one():
    X, y = aekit.datasets.shapes(1200, seed=0)
    Xt, yt = aekit.datasets.shapes(400, seed=1)
    partial = y.copy()
    partial[40:] = -1  # 40 labelled rows; M2 trains on all 1,200
    m2 = aekit.AutoEncoder(model="ssvae", hidden=(128,), latent=8, epochs=20, seed=0,
                           options={"class_weight": 500, "labelled_batch": 20}).fit(X, partial)
    assert list(m2.classes_) == [0, 1, 2, 3]
    p = m2.run_.class_probabilities(Xt)
    assert p.shape == (400, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    accuracy = np.mean(m2.classes_[p.argmax(axis=1)] == yt)
    assert accuracy > 0.7, accuracy  # chance is a quarter
    # Its codes end with the same probabilities.
    np.testing.assert_allclose(m2.transform(Xt)[:, 8:], p, atol=1e-6)
    with pytest.raises(ValueError, match="does not classify"):
        aekit.AutoEncoder(latent=2, epochs=1).fit(X).run_.class_probabilities(Xt)
