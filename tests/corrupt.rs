//! Corruption statistics: each process must do what its level says.

use aekit::data::Corruption;
use aekit::data::batch::rng_for;

#[test]
fn masking_drops_the_requested_fraction() {
    let mut x = vec![0.7f32; 200_000];
    Corruption::Masking { p: 0.3 }.apply(&mut x, (0.0, 1.0), &mut rng_for(1, 2));
    let dropped = x.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
    // Binomial standard deviation is sqrt(0.3*0.7/200000) = 0.001.
    assert!((dropped - 0.3).abs() < 0.005, "dropped {dropped}");
    assert!(x.iter().all(|&v| v == 0.0 || v == 0.7));
}

#[test]
fn gaussian_noise_has_the_requested_sigma_and_is_clipped() {
    let mut x = vec![0.0f32; 200_000];
    Corruption::Gaussian { sigma: 0.25 }.apply(&mut x, (-1e9, 1e9), &mut rng_for(3, 4));
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.003, "mean {mean}");
    assert!((sd - 0.25).abs() < 0.003, "sd {sd}");

    let mut y = vec![0.5f32; 10_000];
    Corruption::Gaussian { sigma: 0.4 }.apply(&mut y, (0.0, 1.0), &mut rng_for(3, 5));
    assert!(y.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(y.contains(&0.0) && y.contains(&1.0), "clipping happens");
}

#[test]
fn salt_and_pepper_sets_both_ends_equally() {
    let mut x = vec![0.5f32; 200_000];
    Corruption::SaltPepper { p: 0.2 }.apply(&mut x, (0.0, 1.0), &mut rng_for(5, 6));
    let salt = x.iter().filter(|&&v| v == 1.0).count() as f64 / x.len() as f64;
    let pepper = x.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
    assert!(
        (salt - 0.1).abs() < 0.004 && (pepper - 0.1).abs() < 0.004,
        "{salt} {pepper}"
    );
}

#[test]
fn same_stream_same_noise() {
    let mut a = vec![0.5f32; 1000];
    let mut b = a.clone();
    let c = Corruption::Gaussian { sigma: 0.1 };
    c.apply(&mut a, (0.0, 1.0), &mut rng_for(9, 1));
    c.apply(&mut b, (0.0, 1.0), &mut rng_for(9, 1));
    assert_eq!(a, b);
}

#[test]
fn specs_parse_print_and_reject_nonsense() {
    for s in ["gaussian:0.4", "masking:0.3", "salt-pepper:0.05"] {
        assert_eq!(s.parse::<Corruption>().unwrap().to_string(), s);
    }
    assert_eq!(
        "gaussian:0.4".parse::<Corruption>().unwrap(),
        Corruption::Gaussian { sigma: 0.4 }
    );
    for bad in [
        "gaussian",
        "masking:1.5",
        "gaussian:-1",
        "blur:0.1",
        "masking:x",
    ] {
        assert!(bad.parse::<Corruption>().is_err(), "{bad}");
    }
}
