//! The training loop: resume must reproduce an uninterrupted run bit for bit, divergence must
//! stop cleanly, configs must round-trip and reject typos.

mod common;

use std::path::Path;

use aekit::fit::{FitOptions, fit};
use aekit::run::{RunConfig, template};
use aekit::train::schedule::learning_rate;
use aekit::{Error, RunDir, TrainConfig, data::Split};

#[test]
fn resume_after_interruption_equals_an_uninterrupted_run() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.train.epochs = 3;
    // A denoising model with dropout, so that the per-step noise and masks must be
    // reproduced too.
    let mut dense = aekit::DenseConfig::new(vec![32], 4);
    dense.dropout = Some(0.2);
    cfg.model = aekit::ModelConfig::new(dense);
    cfg.model.shared_mut().noise = Some(aekit::data::Corruption::Masking { p: 0.25 });
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();

    let straight = dir.path().join("straight");
    fit(&cfg, &raw, &FitOptions::new(&straight)).unwrap();

    // Interrupt in the middle of the second epoch (8 steps per epoch), then resume twice:
    // once mid-epoch, once again at an epoch boundary.
    let resumed = dir.path().join("resumed");
    let mut opts = FitOptions::new(&resumed);
    opts.stop_after_steps = Some(11);
    let err = fit(&cfg, &raw, &opts).err().expect("interrupted");
    assert!(matches!(err, Error::Interrupted(_)), "{err}");
    assert_eq!(err.exit_code(), 130);
    let state: aekit::train::TrainState =
        aekit::io::read_json(&resumed.join("checkpoint/state.json")).unwrap();
    assert_eq!((state.epoch, state.batch, state.global_step), (1, 3, 11));

    opts.resume = true;
    opts.stop_after_steps = Some(5);
    assert!(fit(&cfg, &raw, &opts).is_err());
    opts.stop_after_steps = None;
    let fitted = fit(&cfg, &raw, &opts).unwrap();
    assert_eq!(fitted.summary.epochs_completed, 3);

    let a = common::weights_bits(&straight);
    let b = common::weights_bits(&resumed);
    assert_eq!(
        a, b,
        "resumed weights must equal the uninterrupted run's bit for bit"
    );
    let ma = RunDir::new(&straight).metrics().unwrap();
    let mb = RunDir::new(&resumed).metrics().unwrap();
    assert_eq!(ma.len(), 3);
    assert_eq!(mb.len(), 3);
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!(
            (x.epoch, x.train_loss, x.val_loss),
            (y.epoch, y.train_loss, y.val_loss)
        );
    }
}

/// Batches split over the cores: the share count is the first session's, kept in the
/// checkpoint, so a run begun on two threads and resumed on one equals the run on two.
#[test]
fn a_run_resumed_on_fewer_threads_keeps_its_batches_shares() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.train.batch_size = 80; // 5 steps per epoch, two shares of 40 rows on two threads
    let mut dense = aekit::DenseConfig::new(vec![32], 4);
    dense.dropout = Some(0.2); // each share draws its own masks
    cfg.model = aekit::ModelConfig::new(dense);
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let (two, one) = (pool(2), pool(1));

    let on_two = dir.path().join("two");
    two.install(|| fit(&cfg, &raw, &FitOptions::new(&on_two)))
        .unwrap();
    let on_one = dir.path().join("one");
    one.install(|| fit(&cfg, &raw, &FitOptions::new(&on_one)))
        .unwrap();
    assert_ne!(
        common::weights_bits(&on_two),
        common::weights_bits(&on_one),
        "two shares per batch must train differently (by rounding) from whole batches"
    );

    let resumed = dir.path().join("resumed");
    let mut opts = FitOptions::new(&resumed);
    opts.stop_after_steps = Some(7);
    assert!(two.install(|| fit(&cfg, &raw, &opts)).is_err());
    let state: aekit::train::TrainState =
        aekit::io::read_json(&resumed.join("checkpoint/state.json")).unwrap();
    assert_eq!(state.batch_shares, Some(2));
    opts.resume = true;
    opts.stop_after_steps = None;
    one.install(|| fit(&cfg, &raw, &opts)).unwrap();
    assert_eq!(
        common::weights_bits(&on_two),
        common::weights_bits(&resumed),
        "resumed on one thread, the run must equal the two-thread run bit for bit"
    );
}

#[test]
fn training_reduces_the_loss_and_writes_a_complete_run() {
    let dir = common::tmp();
    let out = dir.path().join("run");
    let mut cfg = common::tiny_config();
    cfg.train.epochs = 4;
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    let fitted = fit(&cfg, &raw, &FitOptions::new(&out)).unwrap();
    for f in [
        "config.toml",
        "config.json",
        "preprocess.json",
        "model.safetensors",
        "metrics.jsonl",
        "summary.json",
        "checkpoint/model.safetensors",
        "checkpoint/optimizer.bpk",
        "checkpoint/state.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let m = RunDir::new(&out).metrics().unwrap();
    assert!(m[3].train_loss < 0.8 * m[0].train_loss, "{:?}", m);
    assert_eq!(fitted.summary.epochs_completed, 4);
    // The saved config rebuilds the same model.
    let reloaded = RunDir::open(&out).unwrap().config().unwrap();
    assert_eq!(reloaded.model.input_dim(), Some(784));
    assert_eq!(reloaded.train, cfg.train);

    // A second run into the same directory is refused rather than mixed in.
    let err = fit(&cfg, &raw, &FitOptions::new(&out)).err().unwrap();
    assert!(err.to_string().contains("already holds a run"), "{err}");
}

#[test]
fn divergence_stops_with_a_clear_message_and_keeps_the_checkpoint() {
    let dir = common::tmp();
    let out = dir.path().join("nan");
    let mut cfg = common::tiny_config();
    cfg.model.shared_mut().loss = Some(aekit::ReconLoss::Mse);
    cfg.model.shared_mut().output_activation = Some(aekit::Activation::Linear);
    cfg.train.optimizer = aekit::train::OptimizerKind::Sgd;
    cfg.train.lr = 1e6;
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    let err = fit(&cfg, &raw, &FitOptions::new(&out))
        .err()
        .expect("diverges");
    assert!(matches!(err, Error::Diverged(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("epoch 1 step") && msg.contains("checkpoint"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 3);
    // The checkpoint holds finite weights.
    let t = aekit::model::safetensors::read(&out.join("checkpoint/model.safetensors")).unwrap();
    assert!(t.values().all(|t| t.data.iter().all(|v| v.is_finite())));
}

#[test]
fn early_stopping_and_time_limit_stop_training() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.train.epochs = 50;
    // An update of 1e-9 * gradient is below f32 resolution for these weights, so the weights
    // and the validation loss cannot change: the first epoch without improvement stops it.
    cfg.train.lr = 1e-9;
    cfg.train.early_stopping = Some(1);
    cfg.train.optimizer = aekit::train::OptimizerKind::Sgd;
    cfg.train.momentum = Some(0.0);
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    let s = fit(&cfg, &raw, &FitOptions::new(dir.path().join("es")))
        .unwrap()
        .summary;
    assert_eq!(s.epochs_completed, 2, "{}", s.stop_reason);
    assert!(
        s.stop_reason.contains("early stopping"),
        "{}",
        s.stop_reason
    );
    assert_eq!(s.best_epoch, Some(1));

    let mut cfg = common::tiny_config();
    cfg.train.epochs = 50;
    cfg.train.max_minutes = Some(0.0);
    let s = fit(&cfg, &raw, &FitOptions::new(dir.path().join("tl")))
        .unwrap()
        .summary;
    assert_eq!(s.epochs_completed, 1);
    assert!(s.stop_reason.contains("time limit"));
}

#[test]
fn every_optimizer_trains() {
    let dir = common::tmp();
    let raw = aekit::data::load(&common::tiny_config().data, Split::Train).unwrap();
    for (i, (opt, lr)) in [
        (aekit::train::OptimizerKind::Sgd, 0.5),
        (aekit::train::OptimizerKind::Adam, 1e-3),
        (aekit::train::OptimizerKind::Adamw, 1e-3),
        (aekit::train::OptimizerKind::Rmsprop, 1e-3),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = common::tiny_config();
        cfg.train.optimizer = opt;
        cfg.train.lr = lr;
        cfg.train.epochs = 3;
        cfg.train.clip_grad_norm = Some(5.0);
        if opt == aekit::train::OptimizerKind::Sgd {
            cfg.train.nesterov = true;
        }
        let out = dir.path().join(format!("o{i}"));
        fit(&cfg, &raw, &FitOptions::new(&out)).unwrap();
        let m = RunDir::new(&out).metrics().unwrap();
        assert!(
            m[2].train_loss < m[0].train_loss,
            "{opt:?}: {} -> {}",
            m[0].train_loss,
            m[2].train_loss
        );
    }
}

#[test]
fn schedules_follow_their_formulas() {
    let mut c = TrainConfig {
        epochs: 10,
        lr: 1.0,
        ..TrainConfig::default()
    };
    assert_eq!(learning_rate(&c, 57, 10), 1.0);
    c.schedule = aekit::train::Schedule::Step;
    c.step_epochs = 3;
    c.gamma = 0.5;
    assert_eq!(learning_rate(&c, 29, 10), 1.0);
    assert_eq!(learning_rate(&c, 30, 10), 0.5);
    assert_eq!(learning_rate(&c, 65, 10), 0.25);
    c.schedule = aekit::train::Schedule::Cosine;
    c.min_lr = 0.1;
    assert!((learning_rate(&c, 0, 10) - 1.0).abs() < 1e-12);
    assert!((learning_rate(&c, 50, 10) - 0.55).abs() < 1e-12);
    assert!((learning_rate(&c, 100, 10) - 0.1).abs() < 1e-12);
    c.warmup_epochs = 2.0;
    assert!((learning_rate(&c, 0, 10) - 0.05).abs() < 1e-12);
    assert!((learning_rate(&c, 19, 10) - 1.0).abs() < 1e-12);
}

#[test]
fn config_toml_round_trips_and_rejects_unknown_keys() {
    let cfg = aekit::presets::apply("hinton2006", &RunConfig::default()).unwrap();
    let text = cfg.to_toml().unwrap();
    let back = RunConfig::from_toml(&text, Path::new("x.toml")).unwrap();
    assert_eq!(back, cfg);

    let text = template().unwrap();
    let template = RunConfig::from_toml(&text, Path::new("aekit.toml")).unwrap();
    assert_eq!(
        template,
        RunConfig::default(),
        "the template documents the defaults"
    );

    let typo = text.replace("batch_size = 128", "batchsize = 128");
    let err = RunConfig::from_toml(&typo, Path::new("typo.toml")).unwrap_err();
    assert!(
        err.to_string().contains("typo.toml") && err.to_string().contains("train.batchsize"),
        "{err}"
    );

    let typo = text.replace("latent = 8", "latent = 8\nlatnet = 3");
    let err = RunConfig::from_toml(&typo, Path::new("t.toml")).unwrap_err();
    assert!(err.to_string().contains("model.latnet"), "{err}");

    let bad = text.replace("optimizer = \"adam\"", "optimizer = \"adagrad\"");
    let err = RunConfig::from_toml(&bad, Path::new("b.toml")).unwrap_err();
    assert!(err.to_string().contains("b.toml"), "{err}");

    assert!(aekit::presets::apply("nope", &RunConfig::default()).is_err());

    // A variant whose settings flatten another's (the IWAE holds the VAE's) still refuses
    // a key neither knows, and round-trips the ones they do.
    let iwae = RunConfig {
        model: aekit::ModelConfig::new(aekit::model::IwaeConfig::default()),
        ..RunConfig::default()
    };
    let text = iwae.to_toml().unwrap();
    assert!(
        text.contains("kind = \"iwae\"") && text.contains("importance_samples = 5"),
        "{text}"
    );
    assert_eq!(
        RunConfig::from_toml(&text, Path::new("i.toml")).unwrap(),
        iwae
    );
    let typo = text.replace(
        "importance_samples = 5",
        "importance_samples = 5\nbetta = 2.0",
    );
    let err = RunConfig::from_toml(&typo, Path::new("i.toml")).unwrap_err();
    assert!(err.to_string().contains("model.betta"), "{err}");
}

/// `--binarize`: every training batch is binary and drawn afresh (a pixel of intensity p is
/// 1 in about a fraction p of the draws); evaluation data is binarised once, the same way
/// on every load; data not in [0, 1] is refused.
#[test]
fn binarized_training_draws_fresh_bits_and_evaluates_on_fixed_ones() {
    use aekit::train::batches::Batches;
    let x = aekit::Matrix::new(1, 3, vec![0.0, 0.3, 1.0]).unwrap();
    let batches = Batches::new(&x, None, 5).with_binarize(true);
    let rows = vec![0usize; 4000];
    let (mut ones, dev) = ([0usize; 3], burn::tensor::Device::flex());
    for stream in 0..2u64 {
        let (input, target) = batches.make(&rows, stream, &dev);
        let v: Vec<f32> = input.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, target.into_data().try_to_vec::<f32>().unwrap());
        for (i, b) in v.iter().enumerate() {
            assert!(*b == 0.0 || *b == 1.0);
            ones[i % 3] += *b as usize;
        }
    }
    assert_eq!((ones[0], ones[2]), (0, 8000));
    assert!((ones[1] as f64 / 8000.0 - 0.3).abs() < 0.02, "{ones:?}");

    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.data.binarize = true;
    cfg.model = aekit::ModelConfig::new(aekit::model::IwaeConfig::default());
    cfg.train.epochs = 1;
    let out = dir.path().join("iwae");
    let mut opts = FitOptions::new(&out);
    opts.quiet = true;
    aekit::train(&cfg, &opts).unwrap();
    let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
    let a = run.load_data(None, Split::Test).unwrap();
    assert!(a.x.data.iter().all(|v| *v == 0.0 || *v == 1.0));
    assert!(a.x.data.contains(&1.0));
    assert_eq!(a.x, run.load_data(None, Split::Test).unwrap().x);

    let mut std = common::tiny_config();
    std.data.binarize = true;
    std.data.scale = aekit::data::preprocess::Scaling::Standardize;
    let err = match aekit::train(&std, &FitOptions::new(dir.path().join("std"))) {
        Err(e) => e,
        Ok(_) => panic!("standardized data was binarised"),
    };
    assert!(
        err.to_string()
            .contains("--binarize needs values in [0, 1]"),
        "{err}"
    );
    assert!(
        !dir.path().join("std").exists(),
        "nothing written for a refused config"
    );
}

/// One flipped bit in the weights, a NaN weight, or a changed byte of the optimiser state is
/// an error naming the file, never a silently different model.
#[test]
fn corrupt_or_non_finite_weights_and_checkpoints_are_refused() {
    let dir = common::tmp();
    let out = dir.path().join("run");
    let cfg = common::tiny_config();
    aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
    let device = burn::tensor::Device::flex();
    assert!(aekit::Run::open(&out, &device).is_ok());

    let model = out.join("model.safetensors");
    let original = std::fs::read(&model).unwrap();
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(&model, &flipped).unwrap();
    let err = aekit::Run::open(&out, &device).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("checksum"),
        "{err}"
    );

    // A NaN written with a valid checksum is still refused.
    let run_cfg = aekit::RunDir::new(&out).config().unwrap();
    let mut tensors: Vec<_> =
        aekit::model::safetensors::read(&out.join("checkpoint/model.safetensors"))
            .unwrap()
            .into_values()
            .collect();
    tensors[0].data[0] = f32::NAN;
    let bytes = aekit::model::safetensors::encode(&tensors, &run_cfg.model).unwrap();
    std::fs::write(&model, bytes).unwrap();
    let err = aekit::Run::open(&out, &device).unwrap_err().to_string();
    assert!(err.contains("NaN"), "{err}");
    std::fs::write(&model, &original).unwrap();

    let optim = out.join("checkpoint/optimizer.bpk");
    let mut bytes = std::fs::read(&optim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&optim, bytes).unwrap();
    let mut opts = aekit::FitOptions::new(&out);
    opts.resume = true;
    let mut more = cfg.clone();
    more.train.epochs += 1;
    let err = aekit::train(&more, &opts)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("optimizer.bpk") && err.contains("checksum"),
        "{err}"
    );
}

/// The variants of issue 19 train: a FactorVAE and an adversarial autoencoder (mixture prior)
/// through the loop's seam, a β-TCVAE, a WAE-MMD and an InfoVAE, each on the built-in shapes,
/// reach less than half the squared error of their untrained selves and resume to the same
/// bytes as an uninterrupted run (the adversarial ones with the discriminator's optimiser in
/// the checkpoint).
#[test]
fn latent_shaping_variants_train_resume_and_learn() {
    let dir = common::tmp();
    for (name, model) in [
        (
            "factorvae",
            "[model]\nkind = \"factorvae\"\nhidden = [64]\nlatent = 4\ndiscriminator_hidden = [32]\n",
        ),
        (
            "aae",
            "[model]\nkind = \"aae\"\nhidden = [64]\nlatent = 4\ncode_prior = \"mixture\"\ndiscriminator_hidden = [32]\n",
        ),
        (
            "btcvae",
            "[model]\nkind = \"btcvae\"\nhidden = [64]\nlatent = 4\nbeta = 6.0\n",
        ),
        (
            "wae",
            "[model]\nkind = \"wae\"\nhidden = [64]\nlatent = 4\n",
        ),
        (
            "infovae",
            "[model]\nkind = \"infovae\"\nhidden = [64]\nlatent = 4\nalpha = 1.0\n",
        ),
    ] {
        let mut cfg = RunConfig::from_toml(
            &format!("[data]\nsource = \"shapes\"\nshapes_train = 800\nshapes_test = 200\n{model}"),
            Path::new("t.toml"),
        )
        .unwrap();
        cfg.train.epochs = 4;
        cfg.train.batch_size = 50;
        let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
        let straight = dir.path().join(format!("{name}-straight"));
        fit(&cfg, &raw, &FitOptions::new(&straight)).unwrap();
        assert_eq!(
            straight
                .join("checkpoint/optimizer-discriminator.bpk")
                .is_file(),
            ["factorvae", "aae"].contains(&name)
        );

        let resumed = dir.path().join(format!("{name}-resumed"));
        let mut opts = FitOptions::new(&resumed);
        opts.stop_after_steps = Some(23);
        assert!(fit(&cfg, &raw, &opts).is_err());
        let mut opts = FitOptions::new(&resumed);
        opts.resume = true;
        fit(&cfg, &raw, &opts).unwrap();
        assert_eq!(
            common::weights_bits(&straight),
            common::weights_bits(&resumed),
            "{name}"
        );

        let run = aekit::Run::open(&straight, &burn::tensor::Device::flex()).unwrap();
        let test = run.load_data(None, Split::Test).unwrap();
        let untrained = aekit::Autoencoder::new(run.model.config(), 1, run.model.device()).unwrap();
        let sse = |m: &aekit::Autoencoder| {
            let r = m.reconstruct(&test.x).unwrap();
            r.data
                .iter()
                .zip(&test.x.data)
                .map(|(a, b)| ((a - b) * (a - b)) as f64)
                .sum::<f64>()
                / test.len() as f64
        };
        let (trained, fresh) = (sse(&run.model), sse(&untrained));
        eprintln!("{name}: squared error per test image {trained:.1}, untrained {fresh:.1}");
        assert!(trained < 0.5 * fresh, "{name}: {trained} vs {fresh}");
    }
}

#[test]
fn init_from_starts_from_another_runs_weights_and_refuses_a_different_model() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.model = aekit::ModelConfig::new(aekit::VaeConfig::new(vec![32], 4));
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    let source = dir.path().join("vae");
    fit(&cfg, &raw, &FitOptions::new(&source)).unwrap();

    // The IWAE has the VAE's tensors: stopped before its first step, its checkpoint holds the
    // source's best weights bit for bit, not its own seed's.
    let mut warm = cfg.clone();
    warm.model = aekit::ModelConfig::new(aekit::model::IwaeConfig {
        vae: aekit::VaeConfig::new(vec![32], 4),
        importance_samples: 3,
        ..Default::default()
    });
    warm.train.seed = 7;
    warm.train.init_from = Some(source.clone());
    let out = dir.path().join("iwae");
    let mut opts = FitOptions::new(&out);
    opts.stop_after_steps = Some(0);
    assert!(matches!(
        fit(&warm, &raw, &opts),
        Err(Error::Interrupted(_))
    ));
    assert_eq!(
        common::weights_bits(&out.join("checkpoint")),
        common::weights_bits(&source)
    );
    // Resumed, it trains on from there rather than loading the source again.
    opts.resume = true;
    opts.stop_after_steps = None;
    let fitted = fit(&warm, &raw, &opts).unwrap();
    assert_eq!(fitted.summary.epochs_completed, 2);
    assert_ne!(common::weights_bits(&out), common::weights_bits(&source));

    // Another code size: refused before a run directory exists, naming the flag.
    let mut other = warm.clone();
    other.model = aekit::ModelConfig::new(aekit::VaeConfig::new(vec![32], 5));
    let refused = dir.path().join("refused");
    let err = fit(&other, &raw, &FitOptions::new(&refused)).err().unwrap();
    assert!(err.to_string().starts_with("--init-from"), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(!refused.exists());
    let missing = dir.path().join("nothing-here");
    other.train.init_from = Some(missing.clone());
    let err = fit(&other, &raw, &FitOptions::new(&refused)).err().unwrap();
    assert!(err.to_string().contains("nothing-here"), "{err}");
    assert!(!refused.exists());
}

/// Checkpoints on a clock: short epochs within `checkpoint_seconds` of the last save write
/// nothing, yet a session stopped mid-run writes the best weights and metrics it held before
/// its checkpoint, and the last epoch always saves — the run ends bit for bit as one saved at
/// every epoch.
#[test]
fn checkpoints_on_a_clock_resume_to_the_same_bytes() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.train.epochs = 4;
    let raw = aekit::data::load(&cfg.data, Split::Train).unwrap();
    let mut every_epoch = cfg.clone();
    every_epoch.train.checkpoint_seconds = 0.0;
    let reference = dir.path().join("every-epoch");
    fit(&every_epoch, &raw, &FitOptions::new(&reference)).unwrap();

    // An hour between saves: after two and a half epochs nothing but the initial checkpoint
    // would be on disk, so the interruption writes the two epochs' metrics and best weights.
    let mut rarely = cfg.clone();
    rarely.train.checkpoint_seconds = 3600.0;
    let run = dir.path().join("rarely");
    let mut opts = FitOptions::new(&run);
    opts.stop_after_steps = Some(20);
    assert!(fit(&rarely, &raw, &opts).is_err());
    let metrics = RunDir::new(&run).metrics().unwrap();
    assert_eq!(metrics.iter().map(|m| m.epoch).collect::<Vec<_>>(), [1, 2]);
    let state: aekit::train::TrainState =
        aekit::io::read_json(&run.join("checkpoint/state.json")).unwrap();
    assert_eq!((state.epoch, state.global_step), (2, 20));
    assert!(
        run.join("model.safetensors").is_file(),
        "the best weights so far"
    );
    let mut opts = FitOptions::new(&run);
    opts.resume = true;
    fit(&rarely, &raw, &opts).unwrap();
    for file in [
        "model.safetensors",
        "metrics.jsonl",
        "checkpoint/model.safetensors",
    ] {
        let read = |d: &Path| std::fs::read(d.join(file)).unwrap();
        if file == "metrics.jsonl" {
            // Lines hold each epoch's seconds: compare everything else.
            let epochs = |d: &Path| {
                RunDir::new(d)
                    .metrics()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m.epoch,
                            m.train_loss.to_bits(),
                            m.val_loss.map(f64::to_bits),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(epochs(&reference), epochs(&run));
        } else {
            assert_eq!(read(&reference), read(&run), "{file}");
        }
    }
    let mut negative = cfg.clone();
    negative.train.checkpoint_seconds = -1.0;
    let err = fit(&negative, &raw, &FitOptions::new(dir.path().join("bad")))
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("checkpoint_seconds must not be negative"),
        "{err}"
    );
}
