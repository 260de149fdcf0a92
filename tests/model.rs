//! The model: losses against closed forms, gradients against finite differences, checkpoints
//! that round-trip bit for bit, and weights in the layout PyTorch expects.

mod common;

use std::collections::HashMap;

use aekit::model::loss::{bce_with_logits, per_sample, per_sample_host};
use aekit::model::{Activation, Autoencoder, DenseConfig, ModelConfig, NamedTensor, ReconLoss};
use aekit::{Error, Matrix};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

fn device() -> Device {
    Device::flex()
}

fn model(hidden: Vec<usize>, latent: usize, input: usize, loss: ReconLoss) -> Autoencoder {
    let mut cfg = ModelConfig::new(DenseConfig::new(hidden, latent));
    cfg.shared_mut().loss = Some(loss);
    cfg.resolve(&[input], true).unwrap();
    Autoencoder::new(&cfg, 7, &device()).unwrap()
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn bce_with_logits_matches_the_closed_form_and_stays_finite() {
    let z = [-30.0f32, -2.0, -0.1, 0.0, 0.5, 3.0, 40.0];
    let y = [0.0f32, 0.3, 1.0, 0.5, 0.0, 0.9, 1.0];
    let got = vals(bce_with_logits(
        Tensor::<1>::from_floats(z, &device()),
        Tensor::<1>::from_floats(y, &device()),
    ));
    for i in 0..z.len() {
        let (zi, yi) = (z[i] as f64, y[i] as f64);
        // -(y log s(z) + (1-y) log(1 - s(z))) with log s(z) = -log(1+e^-z).
        let expected = yi * (-zi).exp().ln_1p() + (1.0 - yi) * zi.exp().ln_1p();
        assert!(
            (got[i] as f64 - expected).abs() < 1e-5 * (1.0 + expected),
            "z={zi} y={yi}: {} vs {expected}",
            got[i]
        );
        assert!(got[i].is_finite());
    }
}

#[test]
fn per_sample_losses_match_host_reference() {
    let logits = [[-1.0f32, 0.5, 2.0], [0.0, -3.0, 1.5]];
    let target = [[0.0f32, 1.0, 0.7], [0.2, 0.0, 1.0]];
    for (loss, act) in [
        (ReconLoss::Mse, Activation::Sigmoid),
        (ReconLoss::Mse, Activation::Linear),
        (ReconLoss::L1, Activation::Tanh),
        (ReconLoss::Bce, Activation::Sigmoid),
    ] {
        let got = vals(per_sample(
            loss,
            act,
            Tensor::<2>::from_floats(logits, &device()),
            Tensor::<2>::from_floats(target, &device()),
        ));
        for r in 0..2 {
            let out: Vec<f32> = logits[r].iter().map(|&z| act.apply_scalar(z)).collect();
            let expected = per_sample_host(loss, &out, &target[r]);
            assert!(
                (got[r] as f64 - expected).abs() < 1e-4,
                "{loss:?}/{act:?} row {r}: {} vs {expected}",
                got[r]
            );
        }
    }
}

/// Loss of `m` on `x` with the parameter `name` replaced by `values`.
/// The loss is the one in the model's config.
fn loss_with(m: &Autoencoder, name: &str, values: &[f32], x: &Matrix) -> f64 {
    let mut tensors: HashMap<String, NamedTensor> = m
        .export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    tensors.get_mut(name).unwrap().data = values.to_vec();
    let net = m.net().clone().import(&tensors).unwrap();
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), &device());
    net.objective(
        xt.clone(),
        xt,
        m.config(),
        &mut aekit::data::batch::rng_for(0, 0),
        f64::INFINITY,
    )
    .total
    .into_scalar::<f32>() as f64
}

#[test]
fn gradients_match_central_finite_differences() {
    for loss in [ReconLoss::Mse, ReconLoss::Bce, ReconLoss::L1] {
        let m = model(vec![5], 3, 6, loss);
        assert_eq!(m.config().loss(), loss);
        let x = Matrix::new(
            4,
            6,
            (0..24).map(|i| ((i * 7) % 11) as f32 / 10.0).collect(),
        )
        .unwrap();
        let xt = Tensor::<2>::from_data(
            TensorData::new(x.data.clone(), [4, 6]),
            &device().autodiff(),
        );
        let net = m.net().clone();
        let l = net
            .objective(
                xt.clone(),
                xt,
                m.config(),
                &mut aekit::data::batch::rng_for(0, 0),
                f64::INFINITY,
            )
            .total;
        let grads = GradientsParams::from_grads(l.backward(), &net);
        let layers = &net.layers;
        let analytic: Vec<(String, Vec<f32>)> = vec![
            (
                "encoder.0.weight".into(),
                // burn stores [in, out]; the exported name is PyTorch's [out, in].
                vals(
                    grads
                        .get::<2>(layers.linear("encoder.0").weight.id)
                        .unwrap()
                        .transpose(),
                ),
            ),
            (
                "decoder.1.bias".into(),
                vals(
                    grads
                        .get::<1>(layers.linear("decoder.1").bias.as_ref().unwrap().id)
                        .unwrap(),
                ),
            ),
        ];
        let exported: HashMap<String, NamedTensor> = m
            .export()
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        for (name, g) in analytic {
            let base = exported[&name].data.clone();
            for k in (0..base.len()).step_by(3) {
                let h = 1e-2f32;
                let mut plus = base.clone();
                plus[k] += h;
                let mut minus = base.clone();
                minus[k] -= h;
                let fd = (loss_with(&m, &name, &plus, &x) - loss_with(&m, &name, &minus, &x))
                    / (2.0 * h as f64);
                let tol = 2e-3 + 0.05 * fd.abs();
                assert!(
                    (g[k] as f64 - fd).abs() < tol,
                    "{loss:?} {name}[{k}]: autodiff {} vs finite difference {fd}",
                    g[k]
                );
            }
        }
    }
}

#[test]
fn safetensors_round_trip_gives_identical_outputs() {
    let dir = common::tmp();
    let p = dir.path().join("model.safetensors");
    let m = model(vec![16, 8], 3, 10, ReconLoss::Mse);
    m.save_safetensors(&p).unwrap();
    let other = {
        let mut cfg = m.config().clone();
        cfg.shared_mut().input_dim = Some(10);
        Autoencoder::new(&cfg, 999, &device()).unwrap()
    };
    let x = Matrix::new(5, 10, (0..50).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    assert_ne!(other.reconstruct(&x).unwrap(), m.reconstruct(&x).unwrap());
    let loaded = other.load_safetensors(&p).unwrap();
    let (a, b) = (m.reconstruct(&x).unwrap(), loaded.reconstruct(&x).unwrap());
    assert_eq!(
        a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(m.export(), loaded.export());
}

#[test]
fn exported_weights_follow_pytorch_layout() {
    // Recompute the forward pass from the exported tensors alone, as PyTorch would:
    // y = x @ W.T + b with W of shape [out, in].
    let m = model(vec![7], 3, 5, ReconLoss::Mse);
    let t: HashMap<String, NamedTensor> = m
        .export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    assert_eq!(t["encoder.0.weight"].shape, vec![7, 5]);
    assert_eq!(t["encoder.1.weight"].shape, vec![3, 7]);
    assert_eq!(t["decoder.1.weight"].shape, vec![5, 7]);
    let linear = |name: &str, x: &[f32]| -> Vec<f32> {
        let w = &t[&format!("{name}.weight")];
        let b = &t[&format!("{name}.bias")];
        let (out, inp) = (w.shape[0], w.shape[1]);
        (0..out)
            .map(|o| b.data[o] + (0..inp).map(|i| w.data[o * inp + i] * x[i]).sum::<f32>())
            .collect()
    };
    let relu = |v: Vec<f32>| v.into_iter().map(|a| a.max(0.0)).collect::<Vec<_>>();
    let x = [0.1f32, 0.9, 0.4, 0.0, 0.7];
    let h = relu(linear("encoder.0", &x));
    let z = linear("encoder.1", &h);
    let h2 = relu(linear("decoder.0", &z));
    let y: Vec<f32> = linear("decoder.1", &h2)
        .into_iter()
        .map(|v| 1.0 / (1.0 + (-v).exp()))
        .collect();
    let got = m
        .reconstruct(&Matrix::new(1, 5, x.to_vec()).unwrap())
        .unwrap();
    let codes = m.encode(&Matrix::new(1, 5, x.to_vec()).unwrap()).unwrap();
    for (a, b) in got.data.iter().zip(&y) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    for (a, b) in codes.data.iter().zip(&z) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn checkpoint_of_another_model_is_rejected_by_name() {
    let dir = common::tmp();
    let p = dir.path().join("small.safetensors");
    model(vec![8], 2, 10, ReconLoss::Mse)
        .save_safetensors(&p)
        .unwrap();
    let err = model(vec![9], 2, 10, ReconLoss::Mse)
        .load_safetensors(&p)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("small.safetensors") && msg.contains("another model"),
        "{msg}"
    );
    let err = model(vec![8, 4], 2, 10, ReconLoss::Mse)
        .load_safetensors(&p)
        .unwrap_err();
    assert!(err.to_string().contains("another model"), "{err}");
    // A checkpoint with more tensors than the model is refused too, not silently truncated.
    let big = dir.path().join("big.safetensors");
    model(vec![8, 8], 8, 10, ReconLoss::Mse)
        .save_safetensors(&big)
        .unwrap();
    let err = model(vec![8], 8, 10, ReconLoss::Mse)
        .load_safetensors(&big)
        .unwrap_err();
    assert!(err.to_string().contains("another model"), "{err}");

    std::fs::write(&p, b"not safetensors at all").unwrap();
    let err = model(vec![8], 2, 10, ReconLoss::Mse)
        .load_safetensors(&p)
        .unwrap_err();
    assert!(matches!(err, Error::BadFile { .. }), "{err}");
}

#[test]
fn inputs_of_the_wrong_width_are_refused() {
    let m = model(vec![4], 2, 6, ReconLoss::Mse);
    let err = m.encode(&Matrix::zeros(3, 5)).unwrap_err();
    assert!(
        err.to_string()
            .contains("expects inputs of 6 features, got 5"),
        "{err}"
    );
    let err = m.decode(&Matrix::zeros(3, 3)).unwrap_err();
    assert!(err.to_string().contains("codes of 2 features"), "{err}");
}

#[test]
fn config_checks_catch_inconsistent_models() {
    let mut cfg = ModelConfig::new(DenseConfig::new(vec![4], 2));
    cfg.shared_mut().output_activation = Some(Activation::Linear);
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    assert!(
        cfg.resolve(&[6], false)
            .unwrap_err()
            .to_string()
            .contains("BCE needs")
    );

    let mut cfg = ModelConfig::new(DenseConfig::new(vec![4], 0));
    assert!(cfg.resolve(&[6], true).is_err());

    let mut arch = DenseConfig::new(vec![4, 3], 2);
    arch.encoder_activations = Some(vec![Activation::Tanh]);
    let mut cfg = ModelConfig::new(arch);
    assert!(
        cfg.resolve(&[6], true)
            .unwrap_err()
            .to_string()
            .contains("1 activations for 2")
    );

    let mut cfg = ModelConfig::new(DenseConfig::new(vec![4], 2));
    cfg.shared_mut().input_dim = Some(10);
    assert!(
        cfg.resolve(&[6], true)
            .unwrap_err()
            .to_string()
            .contains("10 features")
    );
}

/// Checks the gradient of `cfg`'s whole objective with respect to `encoder.0.weight` (at the
/// PyTorch-layout indices `ks`) against central finite differences.
fn check_objective_gradient(m: &Autoencoder, cfg: &ModelConfig, x: &Matrix, ks: &[usize]) {
    let objective = |net: &aekit::model::Network, dev: &Device| common::objective(net, cfg, x, dev);
    let net = m.net().clone();
    let grads = GradientsParams::from_grads(objective(&net, &device().autodiff()).backward(), &net);
    // Dense and VAE models both start with `encoder.0` (tests/conv.rs checks conv gradients).
    let first = net.layers.linear("encoder.0").weight.id;
    let g = vals(grads.get::<2>(first).unwrap().transpose());
    common::check_against_finite_differences(m, "encoder.0.weight", &g, ks.iter().copied(), |n| {
        objective(n, &device()).into_scalar::<f32>() as f64
    });
}

/// Inverted dropout: about p of the units are dropped and the survivors scaled by 1/(1-p), so
/// with linear layers (the code is then linear in each mask) the mean of many training-mode
/// codes and decodes approaches the inference ones; without dropout the training forward is
/// the inference forward, bit for bit.
#[test]
fn dropout_drops_a_fraction_p_and_keeps_the_expectation() {
    let mut rng = aekit::data::batch::rng_for(0, 0);
    let mask = vals(aekit::model::layers::bernoulli_mask(
        100,
        100,
        0.25,
        4.0 / 3.0,
        &mut rng,
        &device(),
    ));
    let dropped = mask.iter().filter(|&&v| v == 0.0).count() as f64 / mask.len() as f64;
    assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
    assert!(mask.iter().all(|&v| v == 0.0 || v == 4.0 / 3.0));

    let build = |dropout: Option<f64>| {
        let mut dense = DenseConfig::new(vec![48, 24], 3);
        dense.activation = Activation::Linear;
        dense.dropout = dropout;
        let mut cfg = ModelConfig::new(dense);
        cfg.resolve(&[5], true).unwrap();
        Autoencoder::new(&cfg, 7, &device()).unwrap()
    };
    let x = Tensor::<2>::from_data(
        TensorData::new((0..10).map(|i| (i as f32 * 0.37).sin()).collect(), [2, 5]),
        &device(),
    );
    let z = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0], [1, 3]), &device());

    let plain = build(Some(0.0));
    let net = plain.net();
    assert_eq!(
        vals(net.encode_training(x.clone(), &mut rng)),
        vals(net.encode(x.clone()))
    );
    assert_eq!(
        vals(net.decode_logits_training(z.clone(), &mut rng)),
        vals(net.decode_logits(z.clone()))
    );

    let m = build(Some(0.25));
    let net = m.net();
    assert_ne!(
        vals(net.encode_training(x.clone(), &mut rng)),
        vals(net.encode(x.clone())),
        "dropout must change a training forward"
    );
    let codes = mean_of_draws(|| vals(net.encode_training(x.clone(), &mut rng)));
    assert_close_in_scale(&codes, &vals(net.encode(x.clone())));
    let logits = mean_of_draws(|| vals(net.decode_logits_training(z.clone(), &mut rng)));
    assert_close_in_scale(&logits, &vals(net.decode_logits(z.clone())));

    let mut dense = DenseConfig::new(vec![8], 2);
    dense.dropout = Some(1.0);
    let mut cfg = ModelConfig::new(dense);
    let err = cfg.resolve(&[5], true).unwrap_err().to_string();
    assert!(err.contains("dropout must lie in [0, 1)"), "{err}");
}

/// Code dropout drops whole code units (each of a training code is 0 or the inference code's
/// value times 1/(1-p), about p of them 0), keeps the expectation, and leaves inference alone.
#[test]
fn code_dropout_drops_code_units_and_keeps_the_expectation() {
    let mut rng = aekit::data::batch::rng_for(0, 0);
    let mut dense = DenseConfig::new(vec![16], 6);
    dense.code_dropout = Some(0.5);
    let mut cfg = ModelConfig::new(dense);
    cfg.resolve(&[5], true).unwrap();
    let m = Autoencoder::new(&cfg, 7, &device()).unwrap();
    let net = m.net();
    let x = Tensor::<2>::from_data(
        TensorData::new((0..20).map(|i| (i as f32 * 0.37).sin()).collect(), [4, 5]),
        &device(),
    );
    let exact = vals(net.encode(x.clone()));
    let (mut zeros, mut total) = (0, 0);
    for _ in 0..50 {
        for (t, e) in vals(net.encode_training(x.clone(), &mut rng))
            .iter()
            .zip(&exact)
        {
            assert!(
                *t == 0.0 || (t - 2.0 * e).abs() <= 1e-6 * e.abs().max(1.0),
                "{t} against {e}"
            );
            zeros += usize::from(*t == 0.0);
            total += 1;
        }
    }
    let dropped = zeros as f64 / total as f64;
    assert!((dropped - 0.5).abs() < 0.05, "dropped {dropped}");
    let codes = mean_of_draws(|| vals(net.encode_training(x.clone(), &mut rng)));
    assert_close_in_scale(&codes, &exact);

    let mut dense = DenseConfig::new(vec![8], 2);
    dense.code_dropout = Some(-0.1);
    let mut cfg = ModelConfig::new(dense);
    let err = cfg.resolve(&[5], true).unwrap_err().to_string();
    assert!(err.contains("code_dropout must lie in [0, 1)"), "{err}");
}

fn mean_of_draws(mut draw: impl FnMut() -> Vec<f32>) -> Vec<f64> {
    const DRAWS: usize = 4000;
    let mut mean = draw().into_iter().map(f64::from).collect::<Vec<_>>();
    for _ in 1..DRAWS {
        for (m, v) in mean.iter_mut().zip(draw()) {
            *m += v as f64;
        }
    }
    mean.iter().map(|m| m / DRAWS as f64).collect()
}

/// Each of `mean` within 5% of `exact`'s largest magnitude.
fn assert_close_in_scale(mean: &[f64], exact: &[f32]) {
    let scale = exact.iter().fold(0.0f64, |a, &v| a.max(v.abs() as f64));
    for (m, e) in mean.iter().zip(exact) {
        assert!(
            (m - *e as f64).abs() < 0.05 * scale,
            "mean {m} against {e} (scale {scale})"
        );
    }
}

#[test]
fn kl_sparsity_matches_the_closed_form() {
    use aekit::model::penalty::{kl_sparsity, kl_sparsity_host, l1};
    let codes = [[0.1f32, 0.9, 0.5], [0.3, 0.7, 0.02]];
    let got = kl_sparsity(Tensor::<2>::from_floats(codes, &device()), 0.05).into_scalar::<f32>();
    let means = [0.2f64, 0.8, 0.26];
    let expected = kl_sparsity_host(&means, 0.05);
    assert!(
        (got as f64 - expected).abs() < 1e-4 * expected,
        "{got} vs {expected}"
    );
    // KL(ρ‖ρ) = 0 and grows away from ρ.
    assert!(kl_sparsity_host(&[0.05], 0.05).abs() < 1e-12);
    assert!(kl_sparsity_host(&[0.5], 0.05) > kl_sparsity_host(&[0.1], 0.05));
    let l = l1(Tensor::<2>::from_floats(
        [[1.0f32, -2.0], [0.5, 0.0]],
        &device(),
    ));
    assert!((l.into_scalar::<f32>() - 1.75).abs() < 1e-6);
}

#[test]
fn penalty_gradients_match_finite_differences() {
    let mut arch = DenseConfig::new(vec![5], 3);
    arch.code_activation = Activation::Sigmoid;
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Mse);
    cfg.shared_mut().code_l1 = Some(0.3);
    cfg.shared_mut().sparsity_target = Some(0.1);
    cfg.shared_mut().sparsity_weight = Some(2.0);
    cfg.resolve(&[6], true).unwrap();
    let m = Autoencoder::new(&cfg, 11, &device()).unwrap();
    let x = Matrix::new(
        4,
        6,
        (0..24).map(|i| ((i * 5) % 13) as f32 / 12.0).collect(),
    )
    .unwrap();
    check_objective_gradient(&m, &cfg, &x, &(0..30).step_by(4).collect::<Vec<_>>());
    // The penalties really are in the objective.
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [4, 6]), &device());
    let terms = m.net().objective(
        xt.clone(),
        xt,
        &cfg,
        &mut aekit::data::batch::rng_for(0, 0),
        f64::INFINITY,
    );
    assert!(terms.total.into_scalar::<f32>() > terms.recon.into_scalar::<f32>() + 0.1);
}

#[test]
fn kl_sparsity_needs_a_sigmoid_code() {
    let mut cfg = ModelConfig::new(DenseConfig::new(vec![4], 2));
    cfg.shared_mut().sparsity_target = Some(0.05);
    let err = cfg.resolve(&[6], true).unwrap_err();
    assert!(err.to_string().contains("sigmoid"), "{err}");
    let mut cfg = ModelConfig::new(DenseConfig::new(vec![4], 2));
    cfg.shared_mut().code_l1 = Some(-1.0);
    assert!(cfg.resolve(&[6], true).is_err());
}

/// Mean over rows of ‖∂h/∂x‖²_F by central differences on every input coordinate (f64 sums).
fn numeric_jacobian_sq(m: &Autoencoder, x: &Matrix) -> f64 {
    let h = 1e-2f32;
    let mut total = 0.0;
    for r in 0..x.rows {
        for i in 0..x.cols {
            let mut plus = x.row(r).to_vec();
            let mut minus = plus.clone();
            plus[i] += h;
            minus[i] -= h;
            let zp = m.encode(&Matrix::new(1, x.cols, plus).unwrap()).unwrap();
            let zm = m.encode(&Matrix::new(1, x.cols, minus).unwrap()).unwrap();
            for (a, b) in zp.data.iter().zip(&zm.data) {
                total += ((a - b) as f64 / (2.0 * h as f64)).powi(2);
            }
        }
    }
    total / x.rows as f64
}

fn jacobian_model(hidden: Vec<usize>, act: Activation, code: Activation) -> Autoencoder {
    let mut arch = DenseConfig::new(hidden, 3);
    arch.activation = act;
    arch.code_activation = code;
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Mse);
    cfg.resolve(&[5], true).unwrap();
    Autoencoder::new(&cfg, 5, &device()).unwrap()
}

fn inputs() -> Matrix {
    Matrix::new(4, 5, (0..20).map(|i| ((i * 7) % 9) as f32 / 8.0).collect()).unwrap()
}

#[test]
fn contractive_closed_form_equals_the_numeric_jacobian_for_a_sigmoid_layer() {
    let m = jacobian_model(vec![], Activation::Relu, Activation::Sigmoid);
    let x = inputs();
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [4, 5]), &device());
    let net = m.net();
    assert!(
        net.variant()
            .contractive_closed_form(&net.layers, xt.clone())
            .is_some()
    );
    let closed = m
        .net()
        .jacobian_frobenius_sq(xt, 1, &mut aekit::data::batch::rng_for(0, 0))
        .into_scalar::<f32>() as f64;
    let numeric = numeric_jacobian_sq(&m, &x);
    assert!(
        (closed - numeric).abs() < 1e-3 * numeric,
        "{closed} vs {numeric}"
    );
}

#[test]
fn contractive_estimate_converges_to_the_numeric_jacobian_for_a_two_layer_encoder() {
    let m = jacobian_model(vec![6], Activation::Tanh, Activation::Linear);
    let x = inputs();
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [4, 5]), &device());
    let net = m.net();
    assert!(
        net.variant()
            .contractive_closed_form(&net.layers, xt)
            .is_none()
    );
    let numeric = numeric_jacobian_sq(&m, &x);
    let (est, _) = aekit::eval::jacobian_norm(&m, &x, 4000, 1).unwrap();
    // 4000 projections: the estimator's relative standard error is about sqrt(2/4000) = 2%.
    assert!((est - numeric).abs() < 0.08 * numeric, "{est} vs {numeric}");
}

#[test]
fn contractive_penalty_gradient_matches_finite_differences() {
    let mut arch = DenseConfig::new(vec![], 3);
    arch.code_activation = Activation::Sigmoid;
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Mse);
    cfg.shared_mut().contractive = Some(0.5);
    cfg.resolve(&[5], true).unwrap();
    let m = Autoencoder::new(&cfg, 3, &device()).unwrap();
    let x = inputs();
    check_objective_gradient(&m, &cfg, &x, &(0..15).collect::<Vec<_>>());
}

fn vae_model(seed: u64) -> Autoencoder {
    let mut cfg = ModelConfig::new(aekit::VaeConfig::new(vec![7], 3));
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.resolve(&[5], true).unwrap();
    Autoencoder::new(&cfg, seed, &device()).unwrap()
}

#[test]
fn vae_kl_matches_a_monte_carlo_estimate() {
    use aekit::model::objective::{kl_per_sample, reparameterise};
    use rand_distr::{Distribution, StandardNormal};
    let mu = [0.7f32, -1.2, 0.1];
    let logvar = [-0.5f32, 0.8, -2.0];
    let closed = kl_per_sample(
        Tensor::<2>::from_floats([mu], &device()),
        Tensor::<2>::from_floats([logvar], &device()),
    )
    .into_scalar::<f32>() as f64;
    // KL = E_q[log q(z) - log p(z)], estimated with 200,000 draws of z from q.
    let mut rng = aekit::data::batch::rng_for(4, 4);
    let n = 200_000;
    let mut acc = 0.0f64;
    for _ in 0..n {
        for j in 0..3 {
            let (m, lv) = (mu[j] as f64, logvar[j] as f64);
            let e: f64 = StandardNormal.sample(&mut rng);
            let z = m + (0.5 * lv).exp() * e;
            let log_q = -0.5 * (lv + e * e);
            let log_p = -0.5 * z * z;
            acc += log_q - log_p;
        }
    }
    let mc = acc / n as f64;
    assert!(
        (closed - mc).abs() < 0.02 * closed.abs() + 0.01,
        "closed {closed} vs MC {mc}"
    );

    // Reparameterised samples have the encoder's mean and variance.
    let rows = 50_000;
    let eps: Vec<f32> = (0..rows * 3)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let z = reparameterise(
        Tensor::<2>::from_floats([mu], &device()).repeat_dim(0, rows),
        Tensor::<2>::from_floats([logvar], &device()).repeat_dim(0, rows),
        Tensor::<2>::from_data(TensorData::new(eps, [rows, 3]), &device()),
    );
    let z = vals(z);
    for j in 0..3 {
        let col: Vec<f64> = (0..rows).map(|i| z[i * 3 + j] as f64).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
        let want_var = (logvar[j] as f64).exp();
        assert!(
            (mean - mu[j] as f64).abs() < 0.02,
            "mean {mean} vs {}",
            mu[j]
        );
        assert!(
            (var - want_var).abs() < 0.03 * want_var,
            "var {var} vs {want_var}"
        );
    }
}

#[test]
fn vae_objective_gradient_matches_finite_differences() {
    let m = vae_model(2);
    let cfg = m.config().clone();
    // The same rng seed gives the same eps for every evaluation, so the objective is a
    // deterministic function of the weights.
    check_objective_gradient(&m, &cfg, &inputs(), &(0..35).step_by(3).collect::<Vec<_>>());
}

#[test]
fn vae_checkpoint_round_trips_and_encodes_the_posterior_mean() {
    let dir = common::tmp();
    let p = dir.path().join("vae.safetensors");
    let m = vae_model(8);
    m.save_safetensors(&p).unwrap();
    let names: Vec<String> = m.export().into_iter().map(|t| t.name).collect();
    assert!(
        names.contains(&"fc_mu.weight".to_string())
            && names.contains(&"fc_logvar.bias".to_string())
    );
    let loaded = vae_model(9).load_safetensors(&p).unwrap();
    let x = inputs();
    assert_eq!(m.encode(&x).unwrap(), loaded.encode(&x).unwrap());
    assert_eq!(m.reconstruct(&x).unwrap(), loaded.reconstruct(&x).unwrap());
    // encode is deterministic (the mean), not a sample.
    assert_eq!(m.encode(&x).unwrap(), m.encode(&x).unwrap());
    // A dense checkpoint is not a VAE.
    let err = vae_model(1)
        .load_safetensors(&{
            let q = dir.path().join("dense.safetensors");
            jacobian_model(vec![7], Activation::Relu, Activation::Linear)
                .save_safetensors(&q)
                .unwrap();
            q
        })
        .unwrap_err();
    assert!(err.to_string().contains("another model"), "{err}");
}

/// No rows in gives no rows out, of the right width, through every inference path.
#[test]
fn empty_inputs_give_empty_outputs_of_the_right_width() {
    let mut cfg = ModelConfig::new(DenseConfig::new(vec![4], 2));
    cfg.resolve(&[6], true).unwrap();
    let m = Autoencoder::new(&cfg, 1, &device()).unwrap();
    let none = Matrix::new(0, 6, vec![]).unwrap();
    let codes = m.encode(&none).unwrap();
    assert_eq!((codes.rows, codes.cols), (0, 2));
    let out = m.decode(&codes).unwrap();
    assert_eq!((out.rows, out.cols), (0, 6));
    let back = m.reconstruct(&none).unwrap();
    assert_eq!((back.rows, back.cols), (0, 6));
}

fn iwae_model(samples: usize, seed: u64) -> Autoencoder {
    iwae_model_with(samples, seed, |_| {})
}

fn iwae_model_with(
    samples: usize,
    seed: u64,
    bound: impl FnOnce(&mut aekit::model::IwaeConfig),
) -> Autoencoder {
    let mut arch = aekit::model::IwaeConfig {
        vae: aekit::VaeConfig::new(vec![7], 3),
        importance_samples: samples,
        ..Default::default()
    };
    bound(&mut arch);
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.resolve(&[5], true).unwrap();
    Autoencoder::new(&cfg, seed, &device()).unwrap()
}

#[test]
fn iwae_objective_gradient_matches_finite_differences() {
    let m = iwae_model(4, 2);
    let cfg = m.config().clone();
    check_objective_gradient(&m, &cfg, &inputs(), &(0..35).step_by(3).collect::<Vec<_>>());
}

/// With one importance sample the IWAE's bound is the ELBO: the same network (same seed,
/// same tensors), the same draw, the same reconstruction term bit for bit, and a sampled KL
/// whose mean over many draws is the VAE's closed-form KL.
#[test]
fn iwae_with_one_sample_is_the_vae_elbo() {
    let (vae, iwae) = (vae_model(5), iwae_model(1, 5));
    assert_eq!(vae.export(), iwae.export());
    let x = inputs();
    let rows = 200_000;
    let mut data = Vec::with_capacity(rows * x.cols);
    for i in 0..rows {
        data.extend_from_slice(x.row(i % x.rows));
    }
    let many = Matrix::new(rows, x.cols, data).unwrap();
    let terms = |m: &Autoencoder| {
        let xt = Tensor::<2>::from_data(
            TensorData::new(many.data.clone(), [rows, x.cols]),
            &device(),
        );
        let t = m.net().objective(
            xt.clone(),
            xt,
            m.config(),
            &mut aekit::data::batch::rng_for(0, 0),
            f64::INFINITY,
        );
        (
            t.total.into_scalar::<f32>() as f64,
            t.recon.into_scalar::<f32>() as f64,
            t.kl.unwrap().into_scalar::<f32>() as f64,
        )
    };
    let (v_total, v_recon, v_kl) = terms(&vae);
    let (i_total, i_recon, i_kl) = terms(&iwae);
    assert_eq!(v_recon, i_recon, "same draw, same reconstruction");
    assert!(
        (v_kl - i_kl).abs() < 0.01 * v_kl,
        "KL {v_kl} vs sampled {i_kl}"
    );
    assert!(
        (v_total - i_total).abs() < 0.01 * v_total,
        "{v_total} vs {i_total}"
    );
    // More samples tighten the bound: the objective (minus the bound) falls.
    let k50 = iwae_model(50, 5);
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), &device());
    let bound = |m: &Autoencoder| {
        m.net()
            .objective(
                xt.clone(),
                xt.clone(),
                m.config(),
                &mut aekit::data::batch::rng_for(1, 0),
                1e9,
            )
            .total
            .into_scalar::<f32>()
    };
    assert!(bound(&k50) < i_total as f32, "{} vs {i_total}", bound(&k50));
}

/// MIWAE and CIWAE against the bounds they sit between. On one set of draws (the same rng),
/// for log weights w: mean(w) ≤ mean over groups of log-mean-exp(group) ≤ log-mean-exp(all)
/// (Jensen twice), so with M·k draws the MIWAE objective lies between the ELBO estimate and the
/// IWAE's with M·k samples; one group is the IWAE, groups of one sample are the mean of the
/// log weights, which CIWAE at β = 1 is too; CIWAE at β = 0 is the IWAE, and in between it is
/// the mixture of the two, linear in β.
#[test]
fn miwae_and_ciwae_bounds_sit_between_the_elbo_and_the_iwae() {
    let x = inputs();
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), &device());
    let objective = |m: &Autoencoder| {
        m.net()
            .objective(
                xt.clone(),
                xt.clone(),
                m.config(),
                &mut aekit::data::batch::rng_for(3, 0),
                1e9,
            )
            .total
            .into_scalar::<f32>() as f64
    };
    let with = |k: usize, groups: Option<usize>, beta: Option<f64>| {
        objective(&iwae_model_with(k, 4, |c| {
            c.groups = groups;
            c.ciwae_beta = beta;
        }))
    };
    // Objectives are minus the bounds: larger bound, smaller objective.
    let iwae12 = with(12, None, None);
    let miwae = with(4, Some(3), None);
    let elbo12 = with(1, Some(12), None);
    assert!(
        iwae12 < miwae && miwae < elbo12,
        "{iwae12} {miwae} {elbo12}"
    );
    assert_eq!(with(12, Some(1), None), iwae12);
    let ciwae = |beta| with(12, None, Some(beta));
    assert!(
        (ciwae(1.0) - elbo12).abs() < 1e-6 * elbo12.abs(),
        "{} vs {elbo12}",
        ciwae(1.0)
    );
    assert!((ciwae(0.0) - iwae12).abs() < 1e-6 * iwae12.abs());
    let mixed = 0.3 * elbo12 + 0.7 * iwae12;
    assert!(
        (ciwae(0.3) - mixed).abs() < 1e-5 * mixed.abs(),
        "{} vs {mixed}",
        ciwae(0.3)
    );
    // MIWAE's gradient is the one of its objective.
    let m = iwae_model_with(3, 2, |c| c.groups = Some(2));
    let cfg = m.config().clone();
    check_objective_gradient(&m, &cfg, &inputs(), &(0..35).step_by(5).collect::<Vec<_>>());
    for (groups, beta, message) in [
        (Some(0), None, "groups must be at least 1"),
        (None, Some(1.5), "ciwae_beta must lie in [0, 1]"),
        (Some(2), Some(0.5), "two different bounds"),
    ] {
        let mut cfg = ModelConfig::new(aekit::model::IwaeConfig {
            groups,
            ciwae_beta: beta,
            ..Default::default()
        });
        let err = cfg.resolve(&[5], true).unwrap_err().to_string();
        assert!(err.contains(message), "{err}");
    }
}

/// A linear-Gaussian model, z ~ N(0, I), x | z ~ N(Wz + b, ½ I) (the Gaussian that squared
/// error stands for), has p(x) = N(b, WWᵀ + ½ I) in closed form. With W's columns orthogonal
/// the exact posterior is diagonal, so a VAE can hold it: every importance weight is then
/// exactly p(x), and the estimate must equal the closed form whatever K. A wrong encoder
/// gives an estimate above it that falls towards it as K grows.
#[test]
fn importance_sampled_nll_matches_the_linear_gaussian_closed_form() {
    use aekit::eval::likelihood::{importance_sampled_nll, negative_log_likelihoods};
    let (w1, w2) = ([0.9f64, 1.2, 0.0, 0.0], [0.0f64, 0.0, 0.56, -0.42]);
    let b = [0.1f64, -0.2, 0.3, 0.0];
    let mut cfg = ModelConfig::new(aekit::VaeConfig::new(vec![], 2));
    cfg.shared_mut().loss = Some(ReconLoss::Mse);
    cfg.shared_mut().output_activation = Some(Activation::Linear);
    cfg.resolve(&[4], false).unwrap();
    let m = Autoencoder::new(&cfg, 1, &device()).unwrap();
    let norm2 = |w: &[f64; 4]| w.iter().map(|v| v * v).sum::<f64>();
    let dot = |a: &[f64; 4], b: &[f64; 4]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (s1, s2) = (norm2(&w1), norm2(&w2));
    let (p1, p2) = (1.0 + 2.0 * s1, 1.0 + 2.0 * s2);
    let tensor = |name: &str, shape: Vec<usize>, data: Vec<f64>| {
        let t = NamedTensor {
            name: name.into(),
            shape,
            data: data.into_iter().map(|v| v as f32).collect(),
        };
        (name.to_string(), t)
    };
    let mu_w: Vec<f64> = w1
        .iter()
        .map(|v| 2.0 * v / p1)
        .chain(w2.iter().map(|v| 2.0 * v / p2))
        .collect();
    let exact: HashMap<String, NamedTensor> = [
        tensor("fc_mu.weight", vec![2, 4], mu_w),
        tensor(
            "fc_mu.bias",
            vec![2],
            vec![-2.0 * dot(&w1, &b) / p1, -2.0 * dot(&w2, &b) / p2],
        ),
        tensor("fc_logvar.weight", vec![2, 4], vec![0.0; 8]),
        tensor("fc_logvar.bias", vec![2], vec![-p1.ln(), -p2.ln()]),
        tensor(
            "decoder.0.weight",
            vec![4, 2],
            (0..4).flat_map(|i| [w1[i], w2[i]]).collect(),
        ),
        tensor("decoder.0.bias", vec![4], b.to_vec()),
    ]
    .into_iter()
    .collect();
    let exact_model = m.with_net(m.net().clone().import(&exact).unwrap());
    let xs = [
        [0.5f64, 1.0, -0.3, 0.2],
        [-1.0, 0.0, 0.4, 0.9],
        [0.0, 0.0, 0.0, 0.0],
    ];
    let closed: Vec<f64> = xs
        .iter()
        .map(|x| {
            let r: Vec<f64> = x.iter().zip(&b).map(|(x, b)| x - b).collect();
            let r: [f64; 4] = r.try_into().unwrap();
            let mut quad = 2.0 * norm2(&r);
            let mut logdet = 2.0 * 0.5f64.ln();
            for (w, s) in [(&w1, s1), (&w2, s2)] {
                quad += dot(w, &r).powi(2) / s * (1.0 / (0.5 + s) - 2.0);
                logdet += (0.5 + s).ln();
            }
            0.5 * (4.0 * (2.0 * std::f64::consts::PI).ln() + logdet + quad)
        })
        .collect();
    let x = Matrix::new(3, 4, xs.iter().flatten().map(|v| *v as f32).collect()).unwrap();
    for k in [1, 7] {
        let nll = negative_log_likelihoods(&exact_model, &x, None, k, 3).unwrap();
        for (got, want) in nll.iter().zip(&closed) {
            assert!(
                (got - want).abs() < 1e-4 * want.abs().max(1.0),
                "K={k}: {got} vs {want}"
            );
        }
    }
    // A posterior that is off: the estimate is an upper bound that tightens with K.
    let mut off = exact.clone();
    off.get_mut("fc_logvar.bias").unwrap().data = vec![0.3, -0.2];
    off.get_mut("fc_mu.bias").unwrap().data[0] += 0.4;
    let off_model = m.with_net(m.net().clone().import(&off).unwrap());
    let mean_closed = closed.iter().sum::<f64>() / 3.0;
    let k1 = importance_sampled_nll(&off_model, &x, None, 1, 4)
        .unwrap()
        .nll_per_image;
    let k2000 = importance_sampled_nll(&off_model, &x, None, 2000, 4)
        .unwrap()
        .nll_per_image;
    assert!(k1 > k2000 + 0.1, "K=1 {k1} vs K=2000 {k2000}");
    assert!(
        (k2000 - mean_closed).abs() < 0.03,
        "K=2000 {k2000} vs exact {mean_closed}"
    );
    // A deterministic autoencoder has no likelihood.
    let err =
        importance_sampled_nll(&model(vec![3], 2, 4, ReconLoss::Mse), &x, None, 10, 0).unwrap_err();
    assert!(err.to_string().contains("probabilistic encoder"), "{err}");
}

/// With a capacity, the KL term is beta·|KL − C| (C per sample, ramped over epochs).
#[test]
fn capacity_objective_is_beta_times_the_kl_distance_from_c() {
    let mut vae = aekit::VaeConfig::new(vec![7], 3);
    vae.beta = 50.0;
    vae.capacity = Some(4.0);
    vae.capacity_epochs = 10.0;
    let mut cfg = ModelConfig::new(vae);
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.resolve(&[5], true).unwrap();
    let m = Autoencoder::new(&cfg, 3, &device()).unwrap();
    let x = inputs();
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), &device());
    for (epochs, c) in [(0.0, 0.0), (5.0, 2.0), (1e9, 4.0)] {
        let t = m.net().objective(
            xt.clone(),
            xt.clone(),
            &cfg,
            &mut aekit::data::batch::rng_for(0, 0),
            epochs,
        );
        let (total, recon, kl) = (
            t.total.into_scalar::<f32>() as f64,
            t.recon.into_scalar::<f32>() as f64,
            t.kl.unwrap().into_scalar::<f32>() as f64,
        );
        let want = recon + 50.0 * (kl - c / 5.0).abs();
        assert!(
            (total - want).abs() < 1e-5 * want,
            "epoch {epochs}: {total} vs {want}"
        );
    }
}

fn rae_model(reg: aekit::model::variants::rae::DecoderRegularizer) -> (Autoencoder, Autoencoder) {
    let dense = DenseConfig::new(vec![6], 3);
    let rae = aekit::model::RaeConfig {
        dense: dense.clone(),
        code_weight: 0.5,
        decoder_regularizer: reg,
        decoder_weight: 0.01,
    };
    let build = |cfg: &mut ModelConfig| {
        cfg.shared_mut().loss = Some(ReconLoss::Bce);
        cfg.resolve(&[5], true).unwrap();
        Autoencoder::new(cfg, 4, &device()).unwrap()
    };
    (
        build(&mut ModelConfig::new(rae)),
        build(&mut ModelConfig::new(dense)),
    )
}

/// The RAE-L2 objective is the dense autoencoder's (same seed, same tensors) plus
/// β·½‖z‖² and (λ/2)·‖θ_decoder‖², each per sample over the width.
#[test]
fn rae_objective_matches_its_closed_form_and_its_gradient_finite_differences() {
    use aekit::model::variants::rae::DecoderRegularizer;
    let (rae, dense) = rae_model(DecoderRegularizer::L2);
    assert_eq!(rae.export(), dense.export());
    let x = inputs();
    let total = |m: &Autoencoder| {
        common::objective(m.net(), m.config(), &x, &device()).into_scalar::<f32>() as f64
    };
    let codes = dense.encode(&x).unwrap();
    let code_sq = codes.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.rows as f64;
    let weight_sq: f64 = dense
        .export()
        .iter()
        .filter(|t| t.name.starts_with("decoder.") && t.name.ends_with(".weight"))
        .flat_map(|t| t.data.iter().map(|v| (*v as f64).powi(2)))
        .sum();
    let want = total(&dense) + (0.5 * 0.5 * code_sq + 0.5 * 0.01 * weight_sq) / 5.0;
    assert!(
        (total(&rae) - want).abs() < 1e-5 * want,
        "{} vs {want}",
        total(&rae)
    );
    let cfg = rae.config().clone();
    check_objective_gradient(&rae, &cfg, &x, &(0..30).step_by(4).collect::<Vec<_>>());
    let (gp, _) = rae_model(DecoderRegularizer::Gp);
    let cfg = gp.config().clone();
    assert!(total(&gp) > total(&dense));
    check_objective_gradient(&gp, &cfg, &x, &(0..30).step_by(4).collect::<Vec<_>>());
}

/// The mixture sampler recovers a known two-component mixture from its draws.
#[test]
fn gaussian_mixture_sampler_recovers_a_known_mixture() {
    use aekit::eval::sampler::{GaussianMixture, Sampler};
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = aekit::data::batch::rng_for(11, 0);
    let n = 6000;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let (e1, e2): (f64, f64) = (
            StandardNormal.sample(&mut rng),
            StandardNormal.sample(&mut rng),
        );
        // 30%: mean (-4, 0), sd 0.5 isotropic; 70%: mean (3, 2), correlated.
        if i % 10 < 3 {
            data.extend([(-4.0 + 0.5 * e1) as f32, (0.5 * e2) as f32]);
        } else {
            data.extend([(3.0 + e1) as f32, (2.0 + 0.8 * e1 + 0.6 * e2) as f32]);
        }
    }
    let codes = Matrix::new(n, 2, data).unwrap();
    let gmm = GaussianMixture::fit(&codes, 2).unwrap();
    let big = (gmm.means[0][0] < gmm.means[1][0]) as usize;
    let small = 1 - big;
    assert!((gmm.weights[big] - 0.7).abs() < 0.02, "{:?}", gmm.weights);
    for (got, want) in gmm.means[big].iter().zip([3.0, 2.0]) {
        assert!((got - want).abs() < 0.06, "{:?}", gmm.means);
    }
    assert!((gmm.means[small][0] + 4.0).abs() < 0.06, "{:?}", gmm.means);
    // Σ = L Lᵀ: for the large component [[1, 0.8], [0.8, 1]].
    let l = &gmm.cholesky[big];
    let cov = [l[0] * l[0], l[2] * l[0], l[2] * l[2] + l[3] * l[3]];
    for (got, want) in cov.iter().zip([1.0, 0.8, 1.0]) {
        assert!((got - want).abs() < 0.08, "{cov:?}");
    }
    // Its draws have the mixture's moments.
    let draws = gmm.sample(20_000, &mut aekit::data::batch::rng_for(2, 0));
    let left = draws.data.chunks(2).filter(|r| r[0] < -0.5).count() as f64 / 20_000.0;
    assert!((left - 0.3).abs() < 0.02, "{left}");
    assert_eq!(
        "gmm:7".parse::<Sampler>().unwrap(),
        Sampler::Gmm { components: 7 }
    );
    assert_eq!("gmm".parse::<Sampler>().unwrap().to_string(), "gmm:10");
    for bad in ["gmm:0", "gmm:x", "mixture", "prior:3"] {
        assert!(bad.parse::<Sampler>().is_err(), "{bad}");
    }
    assert!(GaussianMixture::fit(&Matrix::new(1, 2, vec![0.0, 1.0]).unwrap(), 2).is_err());
}

/// A VQ-VAE small enough to follow by hand: 1×2×2 images, a 1×1 convolution to 2-d vectors
/// (4 positions), 3 codebook entries, a 1×1 convolution back, linear output, squared error.
/// `restart` is `None` without dead-code restarts, else `Some(restart_below)`.
fn tiny_vqvae(ema: Option<f64>, restart: Option<Option<f64>>) -> Autoencoder {
    let arch = aekit::model::VqVaeConfig {
        encoder: aekit::model::layers::parse_layers("conv:2:1").unwrap(),
        decoder: Some(aekit::model::layers::parse_layers("conv:1:1").unwrap()),
        codes: 3,
        commitment: 0.25,
        ema_decay: ema,
        restart_dead_codes: restart.is_some(),
        restart_below: restart.flatten(),
        ..aekit::model::VqVaeConfig::default()
    };
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Mse);
    cfg.shared_mut().output_activation = Some(Activation::Linear);
    cfg.shared_mut().input_shape = Some(vec![1, 2, 2]);
    cfg.resolve(&[1, 2, 2], false).unwrap();
    let m = Autoencoder::new(&cfg, 1, &device()).unwrap();
    // Entries far enough apart that the assignment is clear.
    let mut t: HashMap<String, NamedTensor> = m
        .export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    t.get_mut("codebook").unwrap().data = vec![0.0, 0.0, 1.0, 0.5, -0.8, 0.6];
    m.with_net(m.net().clone().import(&t).unwrap())
}

/// Host forward pass of [`tiny_vqvae`]: per sample and position, the encoder's vector.
fn tiny_vectors(m: &Autoencoder, x: &Matrix) -> Vec<[f64; 2]> {
    let t: HashMap<String, NamedTensor> = m
        .export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let (w, b) = (
        &t["conv_encoder.0.weight"].data,
        &t["conv_encoder.0.bias"].data,
    );
    x.data
        .iter()
        .map(|&p| [(w[0] * p + b[0]) as f64, (w[1] * p + b[1]) as f64])
        .collect()
}

fn nearest(codebook: &[f32], v: [f64; 2]) -> usize {
    (0..codebook.len() / 2)
        .min_by(|&a, &b| {
            let d = |k: usize| {
                (v[0] - codebook[2 * k] as f64).powi(2)
                    + (v[1] - codebook[2 * k + 1] as f64).powi(2)
            };
            d(a).total_cmp(&d(b))
        })
        .unwrap()
}

/// Quantisation picks the nearest entry; the codebook's gradient is the codebook loss's
/// alone, −2/(m·D) Σ (v − e) over the vectors assigned to each entry; the encoder's gradient
/// is the decoder's gradient at the quantised vectors passed straight through, plus the
/// commitment term's.
#[test]
fn vqvae_quantises_to_the_nearest_entry_and_passes_gradients_straight_through() {
    use aekit::model::layers::Layer;
    let m = tiny_vqvae(None, None);
    let x = Matrix::new(2, 4, vec![0.9, -0.4, 0.2, 1.3, -1.1, 0.05, 0.7, 0.4]).unwrap();
    let t: HashMap<String, NamedTensor> = m
        .export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let codebook = t["codebook"].data.clone();
    let vectors = tiny_vectors(&m, &x);
    let assigned: Vec<usize> = vectors.iter().map(|v| nearest(&codebook, *v)).collect();
    let indices = m.codebook_indices(&x).unwrap().unwrap();
    assert_eq!(
        indices.data,
        assigned.iter().map(|&k| k as f32).collect::<Vec<_>>()
    );
    assert!(
        assigned
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "{assigned:?}"
    );
    let codes = m.encode(&x).unwrap();
    for (p, &k) in assigned.iter().enumerate() {
        // The code is channel-major: channel c of position p of sample s.
        let (s, pos) = (p / 4, p % 4);
        for c in 0..2 {
            assert_eq!(codes.data[s * 8 + c * 4 + pos], codebook[2 * k + c]);
        }
    }

    let net = m.net().clone();
    let loss = common::objective(&net, m.config(), &x, &device().autodiff());
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let Some(Layer::Matrix(cb)) = net.layers.get("codebook") else {
        panic!()
    };
    let g_codebook = vals(grads.get::<2>(cb.id).unwrap());
    let md = (vectors.len() * 2) as f64;
    for k in 0..3 {
        for c in 0..2 {
            let want: f64 = vectors
                .iter()
                .zip(&assigned)
                .filter(|(_, a)| **a == k)
                .map(|(v, _)| -2.0 / md * (v[c] - codebook[2 * k + c] as f64))
                .sum();
            let got = g_codebook[2 * k + c] as f64;
            assert!(
                (got - want).abs() < 1e-5,
                "codebook[{k}][{c}]: {got} vs {want}"
            );
        }
    }
    // The encoder's bias: Σ over vectors of ∂L/∂v, with ∂L/∂v the reconstruction's gradient
    // at q (straight through) plus the commitment's 2β/(m·D)·(v − q).
    let (u, ub) = (
        &t["conv_decoder.0.weight"].data,
        t["conv_decoder.0.bias"].data[0],
    );
    let mut want = [0.0f64; 2];
    for (p, (v, &k)) in vectors.iter().zip(&assigned).enumerate() {
        let q = [codebook[2 * k] as f64, codebook[2 * k + 1] as f64];
        let out = u[0] as f64 * q[0] + u[1] as f64 * q[1] + ub as f64;
        // Recon: mean over 2 samples of the squared error summed over 4 pixels, over 4.
        let d_out = 2.0 * (out - x.data[p] as f64) / (4.0 * 2.0);
        for c in 0..2 {
            want[c] += d_out * u[c] as f64 + 2.0 * 0.25 / md * (v[c] - q[c]);
        }
    }
    let aekit::model::layers::Weights::Kernel(k) =
        &net.layers.stack("conv_encoder").unwrap().weights[0]
    else {
        panic!()
    };
    let g_bias = vals(grads.get::<1>(k.bias.id).unwrap());
    for c in 0..2 {
        assert!(
            (g_bias[c] as f64 - want[c]).abs() < 1e-5,
            "bias[{c}]: {} vs {}",
            g_bias[c],
            want[c]
        );
    }
}

/// With moving averages the codebook follows them (entries never used keep their values),
/// and with restarts an entry unused long enough moves onto a vector of the batch.
#[test]
fn vqvae_moving_average_codebook_and_dead_code_restarts() {
    use aekit::model::variant::{Batch, StepContext};
    let x = Matrix::new(2, 4, vec![0.9, -0.4, 0.2, 1.3, -1.1, 0.05, 0.7, 0.4]).unwrap();
    let input = || {
        Tensor::<2>::from_data(
            TensorData::new(x.data.clone(), [2, 4]),
            &device().autodiff(),
        )
    };
    let step = |m: &Autoencoder| {
        let net = m.net().clone();
        let mut rng = aekit::data::batch::rng_for(0, 0);
        let mut cx = StepContext {
            config: m.config(),
            rng: &mut rng,
            epochs_done: 0.0,
            dataset_size: 2,
        };
        let batch = Batch::unlabelled(input(), input());
        let net = net.variant_handle().after_step(net, &batch, &mut cx);
        let t: HashMap<String, Vec<f32>> =
            net.export().into_iter().map(|t| (t.name, t.data)).collect();
        t
    };
    let m = tiny_vqvae(Some(0.9), None);
    let before: HashMap<String, Vec<f32>> =
        m.export().into_iter().map(|t| (t.name, t.data)).collect();
    let vectors = tiny_vectors(&m, &x);
    let assigned: Vec<usize> = vectors
        .iter()
        .map(|v| nearest(&before["codebook"], *v))
        .collect();
    let after = step(&m);
    for k in 0..3 {
        let mine: Vec<&[f64; 2]> = vectors
            .iter()
            .zip(&assigned)
            .filter(|(_, a)| **a == k)
            .map(|(v, _)| v)
            .collect();
        let count = 0.1 * mine.len() as f64;
        assert!((after["codebook_usage"][k] as f64 - count).abs() < 1e-6);
        for c in 0..2 {
            let sum = 0.1 * mine.iter().map(|v| v[c]).sum::<f64>();
            assert!((after["codebook_ema_sum"][2 * k + c] as f64 - sum).abs() < 1e-6);
            let want = if mine.is_empty() {
                before["codebook"][2 * k + c] as f64
            } else {
                sum / count
            };
            assert!(
                (after["codebook"][2 * k + c] as f64 - want).abs() < 1e-5,
                "entry {k}: {} vs {want}",
                after["codebook"][2 * k + c]
            );
        }
    }
    // Restarts: usage starts at 0, below the dead threshold, so every entry this batch did
    // not use lands on one of its vectors.
    let far_third_entry = |restart_below: Option<f64>, usage: f32| {
        let m = tiny_vqvae(None, Some(restart_below));
        let mut t: HashMap<String, NamedTensor> = m
            .export()
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        t.get_mut("codebook").unwrap().data[4..].copy_from_slice(&[50.0, 50.0]);
        t.get_mut("codebook_usage").unwrap().data[2] = usage;
        let m = m.with_net(m.net().clone().import(&t).unwrap());
        let assigned: Vec<usize> = vectors
            .iter()
            .map(|v| nearest(&t["codebook"].data, *v))
            .collect();
        (assigned, step(&m))
    };
    let (assigned, after) = far_third_entry(None, 0.0);
    let unused: Vec<usize> = (0..3).filter(|k| !assigned.contains(k)).collect();
    assert!(unused.contains(&2), "{assigned:?}");
    for k in unused {
        let e = [
            after["codebook"][2 * k] as f64,
            after["codebook"][2 * k + 1] as f64,
        ];
        assert!(
            vectors
                .iter()
                .any(|v| (v[0] - e[0]).abs() < 1e-6 && (v[1] - e[1]).abs() < 1e-6),
            "entry {k} at {e:?} is not a batch vector"
        );
        assert_eq!(after["codebook_usage"][k], 1.0);
    }
    // An entry used half a vector per step lately is alive by default, and rare enough to
    // restart below 1 use per step.
    let (_, after) = far_third_entry(None, 0.5);
    assert_eq!(&after["codebook"][4..], &[50.0, 50.0]);
    let (_, after) = far_third_entry(Some(1.0), 0.5);
    assert_ne!(&after["codebook"][4..], &[50.0, 50.0]);
    assert_eq!(after["codebook_usage"][2], 1.0);
    let mut cfg = ModelConfig::new(aekit::model::VqVaeConfig {
        restart_below: Some(1.0),
        ..aekit::model::VqVaeConfig::default()
    });
    let err = cfg.resolve(&[1, 28, 28], false).unwrap_err().to_string();
    assert!(err.contains("it needs restart_dead_codes"), "{err}");
}

/// The Fréchet distance of samples from two Gaussians approaches the closed form
/// ‖μa − μb‖² + Σ (σa − σb)² (diagonal covariances), and is ≈ 0 between draws of one.
#[test]
fn frechet_distance_matches_the_gaussian_closed_form() {
    use aekit::eval::frechet::frechet_distance;
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = aekit::data::batch::rng_for(3, 0);
    let mut draw = |mean: [f64; 3], sd: [f64; 3], n: usize| {
        let data: Vec<f32> = (0..n)
            .flat_map(|_| {
                (0..3)
                    .map(|j| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        (mean[j] + sd[j] * e) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        Matrix::new(n, 3, data).unwrap()
    };
    let (ma, sa, mb, sb) = (
        [0.0, 1.0, -1.0],
        [1.0, 0.5, 2.0],
        [0.5, 1.0, 0.0],
        [1.5, 0.5, 1.0],
    );
    let a = draw(ma, sa, 40_000);
    let b = draw(mb, sb, 40_000);
    let want: f64 = (0..3)
        .map(|j| (ma[j] - mb[j]).powi(2) + (sa[j] - sb[j]).powi(2))
        .sum();
    let got = frechet_distance(&a, &b).unwrap();
    assert!((got - want).abs() < 0.05 * want, "{got} vs {want}");
    let a2 = draw(ma, sa, 40_000);
    assert!(frechet_distance(&a, &a2).unwrap() < 0.01);
    assert!(frechet_distance(&a, &Matrix::new(1, 3, vec![0.0; 3]).unwrap()).is_err());
}

/// The Fréchet classifier learns the shapes' classes, and its cached copy gives the same
/// features.
#[test]
fn frechet_classifier_learns_the_classes_and_caches_itself() {
    use aekit::eval::frechet::FeatureClassifier;
    let mut cfg = aekit::DataConfig::for_source("shapes");
    cfg.shapes_train = 1500;
    cfg.shapes_test = 300;
    let load = |split| {
        let raw = aekit::data::load(&cfg, split).unwrap();
        aekit::data::preprocess::Preprocessor::fit(aekit::data::preprocess::Scaling::Unit, &raw)
            .transform(&raw)
            .unwrap()
    };
    let (train, test) = (load(aekit::Split::Train), load(aekit::Split::Test));
    let dir = common::tmp();
    let c = FeatureClassifier::cached_in(dir.path(), &train, &test, &device()).unwrap();
    let acc = c.test_accuracy.unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    let again = FeatureClassifier::cached_in(dir.path(), &train, &test, &device()).unwrap();
    assert_eq!(again.test_accuracy, Some(acc));
    assert_eq!(
        c.features(&test.x).unwrap(),
        again.features(&test.x).unwrap()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// The MMD estimate against its closed form for the Gaussian kernel between N(a, I) and
/// N(b, I): E k = (c / (c + 4))^{d/2} exp(−‖a − b‖² / (c + 4)) for k = exp(−‖x − y‖² / c),
/// so MMD² = 2 (c / (c + 4))^{d/2} (1 − exp(−‖a − b‖² / (c + 4))); and ≈ 0 for one
/// distribution (the estimate is unbiased), with either kernel.
#[test]
fn mmd_matches_the_gaussian_closed_form() {
    use aekit::model::penalty::{MmdKernel, mmd};
    let (n, d, c) = (3000, 2, 3.0);
    let mut rng = aekit::data::batch::rng_for(9, 0);
    let mut draw = |shift: f32| {
        let t = aekit::model::layers::normal_tensor(n, d, &mut rng, &device());
        t.add_scalar(shift)
    };
    let (x, y, x2) = (draw(0.0), draw(1.0), draw(0.0));
    let got = mmd(x.clone(), y, MmdKernel::Rbf, c).into_scalar::<f32>() as f64;
    let dist2 = d as f64; // ‖(1, 1)‖²
    let want = 2.0 * (c / (c + 4.0)).powf(d as f64 / 2.0) * (1.0 - (-dist2 / (c + 4.0)).exp());
    assert!((got - want).abs() < 0.1 * want, "{got} vs {want}");
    for kernel in [MmdKernel::Rbf, MmdKernel::Imq] {
        let same = mmd(x.clone(), x2.clone(), kernel, c).into_scalar::<f32>() as f64;
        assert!(same.abs() < 0.01 * want.max(0.1), "{kernel:?}: {same}");
    }
}

/// The WAE objective is the dense autoencoder's plus λ·MMD²(codes, prior draws) per element,
/// and its gradient matches finite differences.
#[test]
fn wae_objective_adds_the_mmd_to_the_prior() {
    use aekit::model::penalty::{MmdKernel, mmd};
    let dense = DenseConfig::new(vec![6], 3);
    let build = |cfg: &mut ModelConfig| {
        cfg.shared_mut().loss = Some(ReconLoss::Bce);
        cfg.resolve(&[5], true).unwrap();
        Autoencoder::new(cfg, 4, &device()).unwrap()
    };
    let wae = build(&mut ModelConfig::new(aekit::model::WaeConfig {
        dense: dense.clone(),
        mmd_weight: 2.0,
        mmd_kernel: MmdKernel::Imq,
    }));
    let plain = build(&mut ModelConfig::new(dense));
    assert!(wae.capabilities().prior && !wae.capabilities().stochastic_encoder);
    let x = inputs();
    let total = |m: &Autoencoder| {
        common::objective(m.net(), m.config(), &x, &device()).into_scalar::<f32>() as f64
    };
    let codes = plain.encode(&x).unwrap();
    let z = Tensor::<2>::from_data(TensorData::new(codes.data.clone(), [x.rows, 3]), &device());
    let prior = aekit::model::layers::normal_tensor(
        x.rows,
        3,
        &mut aekit::data::batch::rng_for(0, 0),
        &device(),
    );
    let m = mmd(z, prior, MmdKernel::Imq, 6.0).into_scalar::<f32>() as f64;
    let want = total(&plain) + 2.0 * m / 5.0;
    assert!(
        (total(&wae) - want).abs() < 1e-5 * want.abs(),
        "{} vs {want}",
        total(&wae)
    );
    let cfg = wae.config().clone();
    check_objective_gradient(&wae, &cfg, &x, &(0..30).step_by(4).collect::<Vec<_>>());
}

/// The InfoVAE with α = 0, λ = 1 is the VAE (same network, same draw, same objective); with
/// α = 1 the KL drops out and (α + λ − 1)·MMD² of the posterior samples against prior draws
/// comes in; its gradient matches finite differences.
#[test]
fn infovae_objective_reweights_the_kl_and_adds_the_mmd() {
    use aekit::model::penalty::{MmdKernel, mmd};
    let info_with = |alpha: f64, lambda: f64, act: Activation| {
        let mut vae = aekit::VaeConfig::new(vec![7], 3);
        vae.activation = act;
        let mut cfg = ModelConfig::new(aekit::model::InfoVaeConfig {
            vae,
            alpha,
            lambda,
            mmd_kernel: MmdKernel::Rbf,
        });
        cfg.shared_mut().loss = Some(ReconLoss::Bce);
        cfg.resolve(&[5], true).unwrap();
        Autoencoder::new(&cfg, 5, &device()).unwrap()
    };
    let info = |alpha, lambda| info_with(alpha, lambda, Activation::Relu);
    let x = inputs();
    let terms = |m: &Autoencoder| {
        let xt =
            Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), &device());
        let t = m.net().objective(
            xt.clone(),
            xt,
            m.config(),
            &mut aekit::data::batch::rng_for(0, 0),
            1e9,
        );
        (
            t.total.into_scalar::<f32>() as f64,
            t.recon.into_scalar::<f32>() as f64,
        )
    };
    let (vae_total, vae_recon) = terms(&vae_model(5));
    let (plain_total, plain_recon) = terms(&info(0.0, 1.0));
    assert_eq!(plain_recon, vae_recon);
    assert!(
        (plain_total - vae_total).abs() < 1e-6,
        "{plain_total} vs {vae_total}"
    );

    let m = info(1.0, 3.0);
    let (total, recon) = terms(&m);
    // The same draws on the host: eps for z, then the prior draws.
    let mut rng = aekit::data::batch::rng_for(0, 0);
    let eps = aekit::model::layers::normal_tensor(x.rows, 3, &mut rng, &device());
    let prior = aekit::model::layers::normal_tensor(x.rows, 3, &mut rng, &device());
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [x.rows, x.cols]), &device());
    let (mu, logvar) = m.net().variant().posterior(&m.net().layers, xt).unwrap();
    let z = aekit::model::objective::reparameterise(mu, logvar, eps);
    let want = recon + 3.0 * mmd(z, prior, MmdKernel::Rbf, 6.0).into_scalar::<f32>() as f64 / 5.0;
    assert!((total - want).abs() < 1e-5 * want, "{total} vs {want}");
    // Tanh units: finite differences across a ReLU's kink would not be a derivative.
    for (a, l) in [(1.0, 0.0), (0.5, 3.0)] {
        let m = info_with(a, l, Activation::Tanh);
        let cfg = m.config().clone();
        check_objective_gradient(&m, &cfg, &x, &(0..35).step_by(3).collect::<Vec<_>>());
    }
}

fn cvae_model(seed: u64) -> Autoencoder {
    let mut vae = aekit::VaeConfig::new(vec![7], 3);
    vae.activation = Activation::Tanh;
    let mut cfg = ModelConfig::new(aekit::model::CvaeConfig { vae });
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.shared_mut().classes = Some(3);
    cfg.resolve(&[5], true).unwrap();
    Autoencoder::new(&cfg, seed, &device()).unwrap()
}

/// The conditional VAE is a VAE whose encoder reads x ‖ onehot(y) and whose decoder reads
/// z ‖ onehot(y): its objective equals that negative ELBO computed by hand from the same
/// draw, its gradients (the class columns' weights included) match finite differences, and
/// one code decodes to a different output under each class.
#[test]
fn conditional_vae_conditions_encoder_and_decoder_on_the_class() {
    use aekit::data::batch::rng_for;
    use aekit::model::objective::{kl_per_sample, reparameterise};
    let m = cvae_model(3);
    let shapes: HashMap<String, Vec<usize>> =
        m.export().into_iter().map(|t| (t.name, t.shape)).collect();
    assert_eq!(shapes["encoder.0.weight"], vec![7, 5 + 3]);
    assert_eq!(shapes["decoder.0.weight"], vec![7, 3 + 3]);
    assert_eq!(shapes["decoder.1.weight"], vec![5, 7]);
    assert_eq!(m.classes(), 3);

    let x = inputs();
    let labels = [0u32, 2, 1, 2];
    let input = m.conditioned(&x, Some(&labels)).unwrap().into_owned();
    assert_eq!((input.rows, input.cols), (4, 8));
    assert_eq!(&input.row(1)[..5], x.row(1));
    assert_eq!(&input.row(1)[5..], &[0.0, 0.0, 1.0]);

    let dev = device();
    let tensor = |mm: &Matrix, d: &Device| {
        Tensor::<2>::from_data(TensorData::new(mm.data.clone(), [mm.rows, mm.cols]), d)
    };
    let objective = |net: &aekit::model::Network, d: &Device| {
        net.objective(
            tensor(&input, d),
            tensor(&x, d),
            m.config(),
            &mut rng_for(0, 0),
            f64::INFINITY,
        )
        .total
    };
    let net = m.net();
    let (mu, logvar) = net
        .variant()
        .posterior(&net.layers, tensor(&input, &dev))
        .unwrap();
    let eps = aekit::model::layers::normal_tensor(4, 3, &mut rng_for(0, 0), &dev);
    let z = reparameterise(mu.clone(), logvar.clone(), eps);
    let one_hot = tensor(&input, &dev).narrow(1, 5, 3);
    let logits = net.decode_logits(Tensor::cat(vec![z, one_hot], 1));
    let recon = vals(per_sample(
        ReconLoss::Bce,
        Activation::Sigmoid,
        logits,
        tensor(&x, &dev),
    ));
    let kl = vals(kl_per_sample(mu, logvar));
    let by_hand = (recon.iter().sum::<f32>() + kl.iter().sum::<f32>()) as f64 / (4.0 * 5.0);
    let got = objective(net, &dev).into_scalar::<f32>() as f64;
    assert!((got - by_hand).abs() < 1e-6, "{got} vs {by_hand}");

    let train = net.clone();
    let grads = GradientsParams::from_grads(
        objective(&train, &dev.clone().autodiff()).backward(),
        &train,
    );
    for name in ["encoder.0", "decoder.0"] {
        let id = train.layers.linear(name).weight.id;
        let g = vals(grads.get::<2>(id).unwrap().transpose());
        // Every fifth weight, the class columns' among them.
        common::check_against_finite_differences(
            &m,
            &format!("{name}.weight"),
            &g,
            (0..g.len()).step_by(5),
            |n| objective(n, &dev).into_scalar::<f32>() as f64,
        );
    }

    let z = Matrix::new(1, 3, vec![0.3, -0.2, 0.5]).unwrap();
    let outs: Vec<Matrix> = (0..3)
        .map(|c| m.with_class(c).unwrap().decode(&z).unwrap())
        .collect();
    assert_ne!(outs[0], outs[1]);
    assert_ne!(outs[1], outs[2]);
    assert_eq!(outs[2], m.decode_given(&z, Some(&[2])).unwrap());
    // Labels given win over the class set for the rows without them.
    assert_eq!(
        outs[1],
        m.with_class(0)
            .unwrap()
            .decode_given(&z, Some(&[1]))
            .unwrap()
    );
    let no_class = m.decode(&z).unwrap_err().to_string();
    assert!(no_class.contains("conditional on the class"), "{no_class}");
    assert!(
        m.with_class(3)
            .unwrap_err()
            .to_string()
            .contains("3 classes")
    );
    assert!(m.decode_given(&z, Some(&[3])).is_err());
    assert!(m.decode_given(&z, Some(&[0, 1])).is_err());
    let plain = model(vec![4], 2, 5, ReconLoss::Bce);
    assert!(plain.with_class(0).is_err());
    // An unconditional model ignores labels.
    assert_eq!(
        plain.encode(&x).unwrap(),
        plain.encode_given(&x, Some(&labels)).unwrap()
    );
}

/// The β-TCVAE's split of the KL against closed forms. Posteriors N(mu_j, s²I) with means
/// drawn from N(0, Σ − s²I) make the aggregate posterior q(z) = N(0, Σ) (Σ with unit
/// diagonal, correlation ρ): then the total correlation is −½ log(1 − ρ²), the
/// dimension-wise KL to N(0, I) is 0, and the mutual information is ½ log det Σ − d·log s.
/// The stratified estimator must find them from one batch of 2,000 drawn from a data set of
/// a million; any estimator's three parts must sum to E[log q(z|x) − log p(z)] exactly.
#[test]
fn kl_decomposition_matches_the_closed_form_of_a_correlated_gaussian() {
    use aekit::model::objective::{AggregateEstimator, kl_decomposition};
    use rand_distr::{Distribution, StandardNormal};
    let (m, rho, s2) = (2000usize, 0.8f64, 0.15f64);
    let mut rng = aekit::data::batch::rng_for(11, 0);
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    // Means from N(0, Σ − s²I): Σ − s²I = [[a, ρ], [ρ, a]], a = 1 − s².
    let a = 1.0 - s2;
    let (l11, l21) = (a.sqrt(), rho / a.sqrt());
    let l22 = (a - l21 * l21).sqrt();
    let (mut mu, mut z) = (Vec::new(), Vec::new());
    for _ in 0..m {
        let (e1, e2) = (normal(), normal());
        let (m1, m2) = (l11 * e1, l21 * e1 + l22 * e2);
        mu.extend([m1 as f32, m2 as f32]);
        z.extend([
            (m1 + s2.sqrt() * normal()) as f32,
            (m2 + s2.sqrt() * normal()) as f32,
        ]);
    }
    let dev = device();
    let t = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [m, 2]), &dev);
    let logvar = vec![s2.ln() as f32; 2 * m];
    let split = |estimator| {
        let p = kl_decomposition(t(&z), (t(&mu), t(&logvar)), 1_000_000, estimator);
        [
            p.mutual_information.into_scalar::<f32>() as f64,
            p.total_correlation.into_scalar::<f32>() as f64,
            p.dimension_wise_kl.into_scalar::<f32>() as f64,
        ]
    };
    let [mi, tc, dkl] = split(AggregateEstimator::Mss);
    let want_tc = -0.5 * (1.0 - rho * rho).ln();
    let want_mi = 0.5 * (1.0 - rho * rho).ln() - s2.ln();
    eprintln!(
        "MI {mi:.3} ({want_mi:.3}), TC {tc:.3} ({want_tc:.3}), dimension-wise KL {dkl:.3} (0)"
    );
    assert!((tc - want_tc).abs() < 0.06, "TC {tc} vs {want_tc}");
    assert!((mi - want_mi).abs() < 0.06, "MI {mi} vs {want_mi}");
    assert!(dkl.abs() < 0.06, "dimension-wise KL {dkl}");

    // The parts telescope to the sampled KL, log q(z|x) − log p(z), for either estimator.
    let mut sampled = 0.0f64;
    for i in 0..m {
        for k in 0..2 {
            let (zv, mv) = (z[2 * i + k] as f64, mu[2 * i + k] as f64);
            sampled += -0.5 * ((zv - mv).powi(2) / s2 + s2.ln()) + 0.5 * zv * zv;
        }
    }
    sampled /= m as f64;
    for estimator in [AggregateEstimator::Mss, AggregateEstimator::Mws] {
        let total: f64 = split(estimator).iter().sum();
        assert!((total - sampled).abs() < 1e-3, "{total} vs {sampled}");
    }
}

/// The β-TCVAE's objective is reconstruction plus α·MI + β·TC + γ·dimension-wise KL (here
/// α = 2, β = 6, γ = 0.5) per element, and its gradient matches finite differences.
#[test]
fn beta_tcvae_objective_weighs_the_three_parts_of_the_kl() {
    use aekit::model::objective::{AggregateEstimator, kl_decomposition, reparameterise};
    let mut vae = aekit::VaeConfig::new(vec![7], 3);
    vae.activation = Activation::Tanh;
    vae.beta = 6.0;
    let mut cfg = ModelConfig::new(aekit::model::BetaTcVaeConfig {
        vae,
        mi_weight: 2.0,
        dim_kl_weight: 0.5,
        aggregate_estimator: AggregateEstimator::Mss,
    });
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.resolve(&[5], true).unwrap();
    let m = Autoencoder::new(&cfg, 4, &device()).unwrap();
    let x = inputs();
    let dev = device();
    let xt = Tensor::<2>::from_data(TensorData::new(x.data.clone(), [4, 5]), &dev);
    let net = m.net();
    let terms = net.objective_in(
        aekit::model::variant::Batch::unlabelled(xt.clone(), xt.clone()),
        m.config(),
        &mut aekit::data::batch::rng_for(0, 0),
        f64::INFINITY,
        100,
    );
    let (mu, logvar) = net.variant().posterior(&net.layers, xt.clone()).unwrap();
    let eps =
        aekit::model::layers::normal_tensor(4, 3, &mut aekit::data::batch::rng_for(0, 0), &dev);
    let z = reparameterise(mu.clone(), logvar.clone(), eps);
    let recon = vals(per_sample(
        ReconLoss::Bce,
        Activation::Sigmoid,
        net.decode_logits(z.clone()),
        xt,
    ));
    let p = kl_decomposition(z, (mu, logvar), 100, AggregateEstimator::Mss);
    let scalar = |t: Tensor<1>| t.into_scalar::<f32>() as f64;
    let (mi, tc, dkl) = (
        scalar(p.mutual_information),
        scalar(p.total_correlation),
        scalar(p.dimension_wise_kl),
    );
    let want = (recon.iter().sum::<f32>() as f64 / 4.0 + 2.0 * mi + 6.0 * tc + 0.5 * dkl) / 5.0;
    let got = scalar(terms.total);
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert!((scalar(terms.kl.unwrap()) - (mi + tc + dkl) / 5.0).abs() < 1e-6);
    check_objective_gradient(&m, &cfg, &x, &(0..35).step_by(3).collect::<Vec<_>>());
}

/// The discriminator behind FactorVAE's total-correlation estimate, trained alone: on codes
/// whose two dimensions are equal (the total correlation is unbounded) it learns to tell them
/// from their dimension-wise shuffle — its loss falls far below the 2·ln 2 of guessing and its
/// estimate, the mean logit, is clearly positive — while on independent dimensions it cannot
/// (loss near 2·ln 2, estimate near 0).
#[test]
fn discriminator_tells_dependent_codes_from_their_shuffle() {
    use aekit::model::discriminator;
    let mut cfg = ModelConfig::new(aekit::model::FactorVaeConfig {
        vae: aekit::VaeConfig::new(vec![4], 2),
        tc_weight: 1.0,
        discriminator_hidden: vec![32, 32],
    });
    cfg.resolve(&[5], true).unwrap();
    let m = Autoencoder::new(&cfg, 3, &device()).unwrap();
    let codes = |n: usize, dependent: bool, rng: &mut rand_chacha::ChaCha8Rng, dev: &Device| {
        let mut v = aekit::data::batch::standard_normal(2 * n, rng);
        if dependent {
            for i in 0..n {
                v[2 * i + 1] = v[2 * i];
            }
        }
        Tensor::<2>::from_data(TensorData::new(v, [n, 2]), dev)
    };
    let train = |dependent: bool| {
        let tc = aekit::TrainConfig {
            lr: 3e-3,
            ..Default::default()
        };
        let mut opt = aekit::train::optim::build(&tc);
        let mut net = m.net().clone();
        let mut rng = aekit::data::batch::rng_for(9, 0);
        let dev = device().autodiff();
        for _ in 0..300 {
            let z = codes(256, dependent, &mut rng, &dev);
            let fake = discriminator::permute_dims(z.clone(), &mut rng);
            let loss = discriminator::loss(&net.layers, z, fake);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = opt.step(tc.lr, net, grads);
        }
        let z = codes(4000, dependent, &mut rng, &dev);
        let fake = discriminator::permute_dims(z.clone(), &mut rng);
        let loss = discriminator::loss(&net.layers, z.clone(), fake).into_scalar::<f32>();
        let estimate = discriminator::logits(&net.layers, z)
            .mean()
            .into_scalar::<f32>();
        (loss as f64, estimate as f64)
    };
    let chance = 2.0 * std::f64::consts::LN_2;
    let (dep_loss, dep_tc) = train(true);
    let (ind_loss, ind_tc) = train(false);
    eprintln!(
        "dependent: loss {dep_loss:.3}, TC {dep_tc:.3}; independent: loss {ind_loss:.3}, TC {ind_tc:.3}"
    );
    assert!(
        dep_loss < 0.6 * chance && dep_tc > 1.0,
        "{dep_loss} {dep_tc}"
    );
    assert!(
        (ind_loss - chance).abs() < 0.05 && ind_tc.abs() < 0.15,
        "{ind_loss} {ind_tc}"
    );
    // The shuffle keeps each column's values and breaks the rows apart.
    let z = codes(50, true, &mut aekit::data::batch::rng_for(1, 1), &device());
    let shuffled = vals(discriminator::permute_dims(
        z.clone(),
        &mut aekit::data::batch::rng_for(2, 2),
    ));
    let z = vals(z);
    for j in 0..2 {
        let mut a: Vec<f32> = (0..50).map(|i| z[2 * i + j]).collect();
        let mut b: Vec<f32> = (0..50).map(|i| shuffled[2 * i + j]).collect();
        a.sort_by(f32::total_cmp);
        b.sort_by(f32::total_cmp);
        assert_eq!(a, b);
    }
    assert!((0..50).any(|i| shuffled[2 * i] != shuffled[2 * i + 1]));
}

/// The graph written into config.json is the model's own, and it describes every layer kind
/// by the tensors `model.safetensors` holds (PyTorch rebuilds runs from it: see
/// tests/torch_loader.rs).
#[test]
fn config_json_holds_the_network_graph_naming_only_saved_tensors() {
    use aekit::model::graph::{Graph, Node};
    let dir = common::tmp();
    for (name, toml) in [
        (
            "dense",
            "[model]\nkind = \"dense\"\nhidden = [16]\nlatent = 3\n",
        ),
        (
            "vqvae",
            "[model]\nkind = \"vqvae\"\nencoder = [\"conv:4:3:s2\"]\ncodes = 8\n",
        ),
        (
            "cvae",
            "[model]\nkind = \"cvae\"\nhidden = [8]\nlatent = 2\n",
        ),
    ] {
        let mut cfg = aekit::RunConfig::from_toml(
            &format!("[data]\nsource = \"shapes\"\nshapes_train = 64\nshapes_test = 16\n{toml}"),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        cfg.train.epochs = 1;
        let out = dir.path().join(name);
        aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        let written: Graph = serde_json::from_value(json["graph"].clone()).unwrap();
        let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
        assert_eq!(written, run.model.graph().unwrap(), "{name}");
        let tensors = aekit::model::safetensors::read(&out.join("model.safetensors")).unwrap();
        for node in written.encoder.iter().chain(&written.decoder) {
            if let Node::Linear { weight, bias } | Node::Conv { weight, bias, .. } = node {
                assert!(
                    tensors.contains_key(weight) && tensors.contains_key(bias),
                    "{name}"
                );
            }
        }
        match name {
            "vqvae" => assert!(
                written
                    .encoder
                    .iter()
                    .any(|n| matches!(n, Node::Quantize { codebook } if codebook == "codebook"))
            ),
            "cvae" => {
                assert_eq!(written.classes, 4);
                assert_eq!(written.encoder[0], Node::AppendClass { classes: 4 });
                assert_eq!(written.decoder[0], Node::AppendClass { classes: 4 });
            }
            _ => assert_eq!(
                written.encoder,
                [
                    Node::Linear {
                        weight: "encoder.0.weight".into(),
                        bias: "encoder.0.bias".into()
                    },
                    Node::Activation {
                        function: aekit::model::Activation::Relu
                    },
                    Node::Linear {
                        weight: "encoder.1.weight".into(),
                        bias: "encoder.1.bias".into()
                    },
                ]
            ),
        }
    }
}
