//! Convolutional models: layer specs, shapes (odd sizes included), the layers against naive
//! host references, gradients against finite differences, checkpoints, and hidden-unit noise.

mod common;

use std::collections::HashMap;

use aekit::Matrix;
use aekit::model::layers::{LayerSpec, infer_shapes, mirror, parse_layers};
use aekit::model::{Autoencoder, ConvConfig, ModelConfig, NamedTensor, ReconLoss};
use burn::optim::GradientsParams;
use burn::tensor::Device;
use common::objective;

fn device() -> Device {
    Device::flex()
}

fn conv_model(encoder: &str, decoder: Option<&str>, shape: &[usize], seed: u64) -> Autoencoder {
    let mut arch = ConvConfig::new(parse_layers(encoder).unwrap());
    arch.decoder = decoder.map(|d| parse_layers(d).unwrap());
    let mut cfg = ModelConfig::new(arch);
    cfg.resolve(shape, true).unwrap();
    Autoencoder::new(&cfg, seed, &device()).unwrap()
}

fn inputs(rows: usize, cols: usize) -> Matrix {
    Matrix::new(
        rows,
        cols,
        (0..rows * cols)
            .map(|i| ((i * 7 + 3) % 13) as f32 / 12.0)
            .collect(),
    )
    .unwrap()
}

fn tensors(m: &Autoencoder) -> HashMap<String, NamedTensor> {
    m.export()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect()
}

#[test]
fn layer_specs_round_trip_through_text() {
    for s in [
        "conv:16:3",
        "conv:32:5:s2:valid:tanh",
        "conv:8:3:p2",
        "convt:32:3:s2",
        "convt:4:3:s2:p1:op1:sigmoid",
        "convt:4:3:s2:p1:op0x1",
        "maxpool:2",
        "avgpool:3:valid",
        "up:2",
        "up:7x9:bilinear",
        "dense:32:linear",
        "reshape:8x4x4",
    ] {
        let l: LayerSpec = s.parse().unwrap();
        assert_eq!(l.to_string(), s);
    }
    for (bad, why) in [
        ("conv:16", "missing kernel size"),
        ("conv:0:3", "at least 1"),
        ("pool:2", "unknown layer"),
        ("conv:8:3:s", "unknown option"),
        ("maxpool:2:p1", "same' or 'valid"),
        ("reshape:8x4", "3 sizes"),
    ] {
        let err = bad.parse::<LayerSpec>().unwrap_err().to_string();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn same_padding_rounds_odd_sizes_up_and_the_decoder_restores_the_input_shape() {
    let keras = ConvConfig::keras_encoder();
    let shapes = infer_shapes(&[1, 28, 28], &keras).unwrap();
    let hw: Vec<usize> = shapes.iter().map(|s| s[1]).collect();
    assert_eq!(
        hw,
        vec![28, 28, 14, 14, 7, 7, 4],
        "7 -> 4 with same pooling"
    );
    assert_eq!(shapes.last().unwrap(), &vec![8, 4, 4]);
    let valid = infer_shapes(&[1, 7, 7], &parse_layers("maxpool:2:valid").unwrap()).unwrap();
    assert_eq!(valid[1], vec![1, 3, 3]);

    // Mirrors of odd-sized, strided and dense encoders give back the input shape exactly.
    for (shape, enc) in [
        (
            vec![1, 28, 28],
            "conv:16:3,maxpool:2,conv:8:3,maxpool:2,conv:8:3,maxpool:2",
        ),
        (vec![3, 7, 9], "conv:4:3:s2,conv:8:3:valid,dense:5"),
        (
            vec![1, 13, 13],
            "conv:4:5:s2:p2,avgpool:2,conv:2:3:s2,dense:3",
        ),
        (
            vec![2, 11, 6],
            "conv:4:3:valid,maxpool:3,reshape:2x3x4,dense:2",
        ),
    ] {
        let layers = parse_layers(enc).unwrap();
        let code = infer_shapes(&shape, &layers).unwrap().pop().unwrap();
        let dec = mirror(&shape, &layers).unwrap();
        let out = infer_shapes(&code, &dec).unwrap().pop().unwrap();
        assert_eq!(out, shape, "{enc}: decoder {dec:?}");
        let n: usize = shape.iter().product();
        let m = conv_model(enc, None, &shape, 1);
        let x = inputs(3, n);
        assert_eq!(m.reconstruct(&x).unwrap().cols, n);
        assert_eq!(m.encode(&x).unwrap().cols, code.iter().product::<usize>());
    }

    // Shapes that do not fit are refused with the layer and the shape named.
    let err = infer_shapes(&[1, 4, 4], &parse_layers("conv:2:5:valid").unwrap()).unwrap_err();
    assert!(err.to_string().contains("conv:2:5:valid"), "{err}");
    let err = infer_shapes(&[10], &parse_layers("conv:2:3").unwrap()).unwrap_err();
    assert!(err.to_string().contains("reshape"), "{err}");
    let mut arch = ConvConfig::new(ConvConfig::keras_encoder());
    arch.decoder = Some(parse_layers("up:2,conv:1:3").unwrap());
    let err = arch.check(&[1, 28, 28]).unwrap_err();
    assert!(err.to_string().contains("1x8x8"), "{err}");
}

/// Naive convolution of one image `[c, h, w]` with `weight` `[o, c, k, k]`, stride `s` and
/// padding `(top, left)`; zero outside the image.
#[allow(clippy::too_many_arguments)]
fn naive_conv(
    x: &[f32],
    [c, h, w]: [usize; 3],
    weight: &[f32],
    bias: &[f32],
    k: usize,
    s: usize,
    (top, left): (usize, usize),
    [oh, ow]: [usize; 2],
) -> Vec<f32> {
    let o = bias.len();
    let mut out = vec![0.0f32; o * oh * ow];
    for oc in 0..o {
        for i in 0..oh {
            for j in 0..ow {
                let mut acc = bias[oc];
                for ic in 0..c {
                    for u in 0..k {
                        for v in 0..k {
                            let (y, xx) = (
                                (i * s + u) as isize - top as isize,
                                (j * s + v) as isize - left as isize,
                            );
                            if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                                acc += weight[((oc * c + ic) * k + u) * k + v]
                                    * x[(ic * h + y as usize) * w + xx as usize];
                            }
                        }
                    }
                }
                out[(oc * oh + i) * ow + j] = acc;
            }
        }
    }
    out
}

#[test]
fn strided_same_convolution_matches_a_naive_reference_with_asymmetric_padding() {
    // 5x6 input, 3x3 kernel, stride 2, same: both axes give 3; the width (6) pads (0, 1) and
    // the height (5) pads (1, 1), as TensorFlow does.
    let m = conv_model("conv:2:3:s2:linear", Some("dense:30"), &[1, 5, 6], 3);
    let x = inputs(2, 30);
    let code = m.encode(&x).unwrap();
    assert_eq!(code.cols, 2 * 3 * 3);
    let t = tensors(&m);
    let (w, b) = (&t["encoder.0.weight"], &t["encoder.0.bias"]);
    assert_eq!(w.shape, vec![2, 1, 3, 3]);
    for r in 0..2 {
        let want = naive_conv(
            &x.data[r * 30..(r + 1) * 30],
            [1, 5, 6],
            &w.data,
            &b.data,
            3,
            2,
            (1, 0),
            [3, 3],
        );
        let got = &code.data[r * 18..(r + 1) * 18];
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
}

#[test]
fn same_pooling_and_nearest_upsampling_match_hand_computed_windows() {
    // maxpool:2 (same) on 7x7 pads one row and column at the end: 4x4 windows of
    // rows {0,1},{2,3},{4,5},{6}; avgpool does not count the padding.
    let x = inputs(1, 49);
    let pool = |kind: &str| {
        conv_model(kind, Some("dense:49"), &[1, 7, 7], 1)
            .encode(&x)
            .unwrap()
    };
    let (mx, av) = (pool("maxpool:2"), pool("avgpool:2"));
    assert_eq!(mx.cols, 16);
    for i in 0..4 {
        for j in 0..4 {
            let cells: Vec<f32> = (2 * i..(2 * i + 2).min(7))
                .flat_map(|r| (2 * j..(2 * j + 2).min(7)).map(move |c| (r, c)))
                .map(|(r, c)| x.data[r * 7 + c])
                .collect();
            let max = cells.iter().cloned().fold(f32::MIN, f32::max);
            let mean = cells.iter().sum::<f32>() / cells.len() as f32;
            assert_eq!(mx.data[i * 4 + j], max, "max ({i},{j})");
            assert!((av.data[i * 4 + j] - mean).abs() < 1e-6, "avg ({i},{j})");
        }
    }
    // Nearest upsampling of 2x2 to 4x4 repeats each value in a 2x2 block.
    let up = conv_model("up:2", Some("dense:4"), &[1, 2, 2], 1);
    let x = Matrix::new(1, 4, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(
        up.encode(&x).unwrap().data,
        vec![
            1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0
        ]
    );
}

/// Autodiff gradients of the objective for the kernel weights of every layer, compared with
/// central finite differences on the exported tensors.
fn check_conv_gradients(m: &Autoencoder, x: &Matrix) {
    let cfg = m.config().clone();
    let net = m.net().clone();
    let grads = GradientsParams::from_grads(
        objective(&net, &cfg, x, &device().autodiff()).backward(),
        &net,
    );
    let mut analytic: Vec<(String, Vec<f32>)> = Vec::new();
    let stacks: Vec<(&str, &aekit::model::layers::Stack)> =
        ["encoder", "decoder", "conv_encoder", "conv_decoder"]
            .into_iter()
            .filter_map(|name| net.layers.stack(name).map(|s| (name, s)))
            .collect();
    assert_eq!(stacks.len(), 2, "a convolutional model has two stacks");
    let names: Vec<String> = m
        .export()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.ends_with(".weight") && n.contains("encoder") || n.contains("decoder"))
        .collect();
    for (prefix, stack) in stacks {
        let mut kernels = stack.weights.iter().filter_map(|w| match w {
            aekit::model::layers::Weights::Kernel(k) => Some(k),
            _ => None,
        });
        for name in names
            .iter()
            .filter(|n| n.starts_with(&format!("{prefix}.")) && n.ends_with(".weight"))
        {
            let shape = &tensors(m)[name].shape;
            if shape.len() != 4 {
                continue;
            }
            let k = kernels.next().unwrap();
            let g = grads.get::<4>(k.weight.id).unwrap();
            let flat: Vec<f32> = g.into_data().convert::<f32>().try_into_vec().unwrap();
            analytic.push((name.clone(), flat));
        }
    }
    assert!(analytic.len() >= 2, "{:?}", analytic.iter().map(|a| &a.0));
    for (name, g) in analytic {
        let n = g.len();
        common::check_against_finite_differences(
            m,
            &name,
            &g,
            (0..n).step_by((n / 6).max(1)),
            |net| objective(net, &cfg, x, &device()).into_scalar::<f32>() as f64,
        );
    }
}

#[test]
fn conv_autoencoder_gradients_match_finite_differences() {
    // Tanh keeps the objective smooth, so central differences are accurate everywhere;
    // pooling, upsampling and a strided transposed convolution are on the path.
    let mut arch = ConvConfig::new(parse_layers("conv:3:3:s2,avgpool:2,conv:2:3").unwrap());
    arch.activation = aekit::model::Activation::Tanh;
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.resolve(&[1, 9, 8], true).unwrap();
    let m = Autoencoder::new(&cfg, 5, &device()).unwrap();
    let arch: &ConvConfig = m.config().arch().expect("a conv model");
    let dec: Vec<String> = arch
        .decoder_layers(m.config().shared().input_shape.as_deref().unwrap())
        .unwrap()
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(dec.iter().any(|l| l.starts_with("convt")), "{dec:?}");
    check_conv_gradients(&m, &inputs(3, 72));
}

#[test]
fn conv_vae_gradients_match_finite_differences_and_checkpoints_round_trip() {
    let make = |seed| {
        let mut arch = aekit::VaeConfig::new(vec![6], 2);
        arch.conv = parse_layers("conv:3:3:s2,conv:2:3:s2").unwrap();
        arch.activation = aekit::model::Activation::Tanh;
        let mut cfg = ModelConfig::new(arch);
        cfg.resolve(&[1, 8, 7], true).unwrap();
        Autoencoder::new(&cfg, seed, &device()).unwrap()
    };
    let m = make(4);
    check_conv_gradients(&m, &inputs(3, 56));
    let dir = common::tmp();
    let p = dir.path().join("cvae.safetensors");
    m.save_safetensors(&p).unwrap();
    let loaded = make(9).load_safetensors(&p).unwrap();
    let x = inputs(4, 56);
    assert_eq!(m.encode(&x).unwrap(), loaded.encode(&x).unwrap());
    assert_eq!(m.reconstruct(&x).unwrap(), loaded.reconstruct(&x).unwrap());
    assert_eq!(m.encode(&x).unwrap().cols, 2);
}

#[test]
fn conv_checkpoints_round_trip_and_refuse_other_architectures() {
    let enc = "conv:4:3,maxpool:2,conv:2:3,maxpool:2";
    let m = conv_model(enc, None, &[1, 10, 10], 1);
    let dir = common::tmp();
    let p = dir.path().join("conv.safetensors");
    m.save_safetensors(&p).unwrap();
    let loaded = conv_model(enc, None, &[1, 10, 10], 2)
        .load_safetensors(&p)
        .unwrap();
    let x = inputs(5, 100);
    assert_eq!(m.reconstruct(&x).unwrap(), loaded.reconstruct(&x).unwrap());
    // Kernels are stored in PyTorch's Conv2d layout [out, in, kh, kw].
    assert_eq!(tensors(&m)["encoder.2.weight"].shape, vec![2, 4, 3, 3]);
    let err = conv_model(
        "conv:5:3,maxpool:2,conv:2:3,maxpool:2",
        None,
        &[1, 10, 10],
        1,
    )
    .load_safetensors(&p)
    .unwrap_err();
    assert!(err.to_string().contains("encoder.0.weight"), "{err}");
}

#[test]
fn hidden_noise_corrupts_the_code_seen_by_the_decoder() {
    // Masking every code unit feeds the decoder zeros: the objective must equal the loss of
    // decoding the zero code, whatever the input.
    let mut cfg = ModelConfig::new(aekit::DenseConfig::new(vec![6], 3));
    cfg.shared_mut().hidden_noise = Some("masking:1".parse().unwrap());
    cfg.resolve(&[5], true).unwrap();
    let m = Autoencoder::new(&cfg, 3, &device()).unwrap();
    let x = inputs(4, 5);
    let noisy = objective(m.net(), &cfg, &x, &device()).into_scalar::<f32>();
    let zeros = m
        .decode(&Matrix::new(4, 3, vec![0.0; 12]).unwrap())
        .unwrap();
    let bce: f32 = zeros
        .data
        .iter()
        .zip(&x.data)
        .map(|(p, y)| -(y * p.ln() + (1.0 - y) * (1.0 - p).ln()))
        .sum::<f32>()
        / 20.0;
    assert!((noisy - bce).abs() < 1e-5, "{noisy} vs {bce}");
    // Without the noise the same model scores differently, and salt-and-pepper is refused.
    let mut clean = cfg.clone();
    clean.shared_mut().hidden_noise = None;
    let plain = objective(m.net(), &clean, &x, &device()).into_scalar::<f32>();
    assert!((plain - noisy).abs() > 1e-4);
    let mut bad = cfg.clone();
    bad.shared_mut().hidden_noise = Some("salt-pepper:0.1".parse().unwrap());
    assert!(bad.validate().is_err());
}

/// A kernel wider than its (unpadded) input: taps that read only padding have no entries. Their
/// first image index used to fall before the image and panic; the gradients must still match
/// finite differences.
#[test]
fn a_kernel_wider_than_its_input_convolves_correctly() {
    // Same padding puts 4 zeros before a 3-wide input: more than the 3 outputs.
    let mut arch = ConvConfig::new(parse_layers("conv:2:9").unwrap());
    arch.activation = aekit::model::Activation::Tanh;
    let mut cfg = ModelConfig::new(arch);
    cfg.shared_mut().loss = Some(ReconLoss::Bce);
    cfg.resolve(&[1, 3, 3], true).unwrap();
    let m = Autoencoder::new(&cfg, 3, &device()).unwrap();
    let x = inputs(2, 9);
    let out = m.reconstruct(&x).unwrap();
    assert!(out.data.iter().all(|v| v.is_finite()));
    check_conv_gradients(&m, &x);
}
