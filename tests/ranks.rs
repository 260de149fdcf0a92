//! Data-parallel training over ranks (`aekit::train::ranks`), with the ranks as threads of this
//! process: the same exchanges MPI carries (tests/mpi.rs runs them under `mpirun`), so the
//! default build checks that N ranks train exactly as one process with N shares, stop together,
//! resume, and refuse to start when they differ.

mod common;

use std::path::Path;
use std::sync::Arc;

use aekit::error::Error;
use aekit::{FitOptions, RunConfig};

/// `f` on a pool of `threads` threads: a rank's cores, or one process's.
fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
        .install(f)
}

/// Batches of 100 rows: two shares of 50 on two ranks, and the epoch's last batch of 60 rows
/// one share (too few rows for two), which leaves rank 1 without a share of it.
fn config() -> RunConfig {
    let mut cfg = common::tiny_config();
    cfg.train.batch_size = 100;
    cfg.train.epochs = 3;
    cfg
}

/// Trains `configs[r]` on rank `r` of `configs.len()` thread ranks, each with one thread and
/// the options `tweak` sets; every rank's result in rank order.
fn on_ranks(
    configs: &[RunConfig],
    out: &Path,
    tweak: impl Fn(usize, &mut FitOptions) + Sync,
) -> Vec<aekit::Result<aekit::fit::Fitted>> {
    let group = aekit::train::ranks::local::group(configs.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .zip(configs)
            .enumerate()
            .map(|(rank, (me, cfg))| {
                let tweak = &tweak;
                s.spawn(move || {
                    in_pool(1, || {
                        let mut opts = FitOptions::new(out);
                        opts.ranks = Some(Arc::new(me));
                        tweak(rank, &mut opts);
                        aekit::train(cfg, &opts)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("rank thread"))
            .collect()
    })
}

fn expect_err(result: &aekit::Result<aekit::fit::Fitted>) -> &Error {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn two_ranks_train_as_one_process_whose_batches_are_split_in_two() {
    let tmp = common::tmp();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let cfg = config();
    in_pool(2, || aekit::train(&cfg, &FitOptions::new(&one))).expect("one process");
    let results = on_ranks(&[cfg.clone(), cfg.clone()], &two, |_, _| {});
    let fitted: Vec<_> = results.into_iter().map(|r| r.expect("rank")).collect();
    common::assert_same_run(&one, &two);
    let state: serde_json::Value =
        serde_json::from_slice(&common::read(&two.join("checkpoint/state.json"))).unwrap();
    assert_eq!(state["batch_shares"], 2);
    assert_eq!(state["epoch"], 3);
    // Rank 1 holds the same weights as rank 0 (its last, here also the best).
    let losses = |f: &aekit::fit::Fitted| (f.summary.best_val_loss, f.summary.final_train_loss);
    assert_eq!(losses(&fitted[0]), losses(&fitted[1]));
    // The allreduce path (here the threads' sum, in rank order) ends in the same bytes too.
    let reduced = tmp.path().join("reduced");
    let mut by_allreduce = cfg.clone();
    by_allreduce.train.rank_sum = aekit::train::RankSum::Allreduce;
    for r in on_ranks(&[by_allreduce.clone(), by_allreduce], &reduced, |_, _| {}) {
        r.expect("rank");
    }
    common::assert_same_run(&one, &reduced);
    let rank1 = tmp.path().join("rank1.safetensors");
    fitted[1].model.save_safetensors(&rank1).unwrap();
    assert!(common::read(&rank1) == common::read(&two.join("checkpoint/model.safetensors")));
}

/// A table streamed from Parquet: every rank reads the whole stream in the same seeded order
/// of row groups and shuffle windows and trains on its share of each batch, so two ranks still
/// end where one process with two shares does; an interrupted run resumes to the same bytes.
#[test]
fn two_ranks_streaming_a_table_train_as_one_process_and_resume_to_the_same_bytes() {
    let tmp = common::tmp();
    let data = aekit::data::load(
        &aekit::data::DataConfig {
            shapes_train: 500,
            ..Default::default()
        },
        aekit::Split::Train,
    )
    .unwrap();
    let table = tmp.path().join("shapes.parquet");
    aekit::data::table::write::write_dataset(&table, &data, 64).unwrap();
    let mut cfg = config();
    cfg.data = aekit::data::DataConfig::for_source(&format!("parquet:{}", table.display()));
    cfg.data.shuffle_buffer = Some(120);
    let (one, two, split) = (
        tmp.path().join("one"),
        tmp.path().join("two"),
        tmp.path().join("split"),
    );
    in_pool(2, || aekit::train(&cfg, &FitOptions::new(&one))).expect("one process");
    let both = [cfg.clone(), cfg.clone()];
    for r in on_ranks(&both, &two, |_, _| {}) {
        r.expect("rank");
    }
    common::assert_same_run(&one, &two);
    let stopped = on_ranks(&both, &split, |rank, opts| {
        if rank == 0 {
            opts.stop_after_steps = Some(7);
        }
    });
    assert!(stopped.iter().all(|r| r.is_err()));
    for r in on_ranks(&both, &split, |_, opts| opts.resume = true) {
        r.expect("resumed rank");
    }
    common::assert_same_run(&one, &split);
}

#[test]
fn a_rank_interrupted_stops_every_rank_at_the_same_step_and_the_run_resumes_to_the_same_bytes() {
    let tmp = common::tmp();
    let (whole, split) = (tmp.path().join("whole"), tmp.path().join("split"));
    let cfg = config();
    let both = [cfg.clone(), cfg.clone()];
    for r in on_ranks(&both, &whole, |_, _| {}) {
        r.expect("uninterrupted rank");
    }
    // Only rank 1 is asked to stop (as a signal would reach one process).
    let stopped = on_ranks(&both, &split, |rank, opts| {
        if rank == 1 {
            opts.stop_after_steps = Some(5);
        }
    });
    for r in &stopped {
        assert!(
            matches!(expect_err(r), Error::Interrupted(_)),
            "{}",
            expect_err(r)
        );
    }
    let state: serde_json::Value =
        serde_json::from_slice(&common::read(&split.join("checkpoint/state.json"))).unwrap();
    assert_eq!(state["global_step"], 5, "stopped before the sixth step");
    for r in on_ranks(&both, &split, |_, opts| opts.resume = true) {
        r.expect("resumed rank");
    }
    common::assert_same_run(&whole, &split);
}

#[test]
fn ranks_started_with_different_settings_or_data_refuse_to_start_and_name_the_difference() {
    let tmp = common::tmp();
    let cfg = config();
    let mut other = cfg.clone();
    other.train.lr = 2e-3;
    let out = tmp.path().join("lr");
    for r in on_ranks(&[cfg.clone(), other], &out, |_, _| {}) {
        let e = expect_err(&r).to_string();
        assert!(
            e.contains("rank 1") && e.contains("train.lr") && e.contains("0.002"),
            "{e}"
        );
    }
    assert!(!out.exists(), "nothing written");

    // The same settings, one value of the data changed on rank 1.
    let data = aekit::data::load(&cfg.data, aekit::Split::Train).unwrap();
    let mut changed = data.clone();
    changed.x.data[17] += 0.5;
    let out = tmp.path().join("data");
    let group = aekit::train::ranks::local::group(2);
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .into_iter()
            .zip([&data, &changed])
            .map(|(me, raw)| {
                let (cfg, out) = (&cfg, &out);
                s.spawn(move || {
                    in_pool(1, || {
                        let mut opts = FitOptions::new(out);
                        opts.ranks = Some(Arc::new(me));
                        expect_err(&aekit::fit(cfg, raw, &opts)).to_string()
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in errors {
        assert!(e.contains("data.values") && e.contains("rank 1"), "{e}");
    }
    assert!(!out.exists(), "nothing written");
}

#[test]
fn models_or_batches_that_cannot_be_split_over_ranks_are_refused_by_name() {
    let tmp = common::tmp();
    let mut factor = config();
    factor.model = toml::from_str(
        "kind = \"factorvae\"\nhidden = [16]\nlatent = 3\ndiscriminator_hidden = [8]\n",
    )
    .unwrap();
    let mut sparse = config();
    let mut arch = aekit::DenseConfig::new(vec![32], 4);
    arch.code_activation = aekit::Activation::Sigmoid;
    sparse.model = aekit::ModelConfig::new(arch);
    sparse.model.shared_mut().sparsity_target = Some(0.05);
    let mut small = config();
    small.train.batch_size = 63;
    for (cfg, words) in [
        (factor, ["factorvae", "discriminator"]),
        (sparse, ["dense", "couples the rows"]),
        (small, ["--batch-size 63", "--batch-size 64 or more"]),
    ] {
        let out = tmp
            .path()
            .join(format!("{}-{}", cfg.model.kind(), cfg.train.batch_size));
        for r in on_ranks(&[cfg.clone(), cfg.clone()], &out, |_, _| {}) {
            let e = expect_err(&r).to_string();
            assert!(words.iter().all(|w| e.contains(w)), "{e}");
        }
        assert!(!out.exists(), "nothing written");
    }
}

#[test]
fn a_run_resumed_on_another_number_of_ranks_is_refused() {
    let tmp = common::tmp();
    let out = tmp.path().join("run");
    let cfg = config();
    let stopped = on_ranks(&[cfg.clone(), cfg.clone()], &out, |_, opts| {
        opts.stop_after_steps = Some(2)
    });
    assert!(stopped.iter().all(|r| r.is_err()));
    for r in on_ranks(&[cfg.clone(), cfg.clone(), cfg.clone()], &out, |_, opts| {
        opts.resume = true
    }) {
        let e = expect_err(&r).to_string();
        assert!(
            e.contains("2 shares") && e.contains("not 3") && e.contains("mpirun -np 2"),
            "{e}"
        );
    }
}

/// A build without the `mpi` feature, started by a launcher as one of several processes,
/// refuses to train rather than train copies that race for one run directory.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_one_of_several_ranks() {
    let tmp = common::tmp();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(["train", "--epochs", "1", "--out"])
        .arg(tmp.path().join("run"))
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("OMPI_COMM_WORLD_RANK", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rank 1 of 2") && err.contains("--features mpi"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!tmp.path().join("run").exists());
}
