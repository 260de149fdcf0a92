//! The bad-input matrix: every loader and command given what a new user or a hostile file
//! would give it. Each case must exit with code 2 and one `error:` line naming the file or
//! flag, never panic, and leave no output behind.

mod common;

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Runs `aekit` with the words of `args` in `dir`, which must succeed.
fn aekit_ok(dir: &Path, args: &str) {
    let run = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn fixtures(dir: &Path) {
    aekit_ok(
        dir,
        "train --data shapes --limit 300 --hidden 16 --latent 2 --epochs 1 --quiet --no-report --out runs/a",
    );
    // A finished run whose checkpoint/ was deleted to save space.
    aekit_ok(
        dir,
        "train --data shapes --limit 300 --hidden 16 --latent 2 --epochs 1 --quiet --no-report --out runs/nockpt",
    );
    std::fs::remove_dir_all(dir.join("runs/nockpt/checkpoint")).unwrap();
    write(dir, "bad.parquet", b"PAR1 not really a parquet file PAR1");
    // An IDX image file whose header declares 100 images of 28x28 and holds 50.
    let mut idx = vec![0u8, 0, 8, 3];
    for d in [100u32, 28, 28] {
        idx.extend(d.to_be_bytes());
    }
    idx.extend(vec![7u8; 50 * 28 * 28]);
    write(dir, "cut-images", &idx);
    // A .npy header that does not parse: npyz's diagnostic spans six lines.
    let header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,, ), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let padded = 128 - 10;
    npy.extend((padded as u16).to_le_bytes());
    npy.extend(header);
    npy.extend(std::iter::repeat_n(b' ', padded - header.len() - 1));
    npy.push(b'\n');
    npy.extend([0u8; 12]);
    write(dir, "badheader.npy", &npy);
    write(dir, "ragdir/ragged.csv", b"a,b\n1,2\n3,4,5\n");
    write(dir, "empty.csv", b"");
    write(dir, "ragged.csv", b"1,2,3\n4,5\n");
    write(dir, "nan.csv", b"1,2\nnan,3\n");
    // Text makes a typed table; one with a column of no values is refused naming it.
    write(dir, "text.csv", b"a,b,c\n1,x,\n2,y,\n");
    write(dir, "nolabels.csv", b"0.1,0.2\n0.3,0.4\n");
    write(
        dir,
        "good.csv",
        b"0.1,0.2,0.3\n0.3,0.4,0.5\n0.5,0.6,0.7\n0.7,0.8,0.9\n",
    );
    aekit_ok(dir, "data convert --data csv:good.csv --out good.parquet");
    write(dir, "narrow.csv", b"0.1,0.2\n0.3,0.4\n");
    write(dir, "wrongwidth.csv", b"1,2,3\n4,5,6\n");
    write(dir, "bad.npy", b"not numpy at all");
    let mut trunc = Vec::new();
    {
        let p = dir.join("full.npy");
        aekit::data::npy::write(&p, &aekit::Matrix::new(4, 3, vec![0.5; 12]).unwrap()).unwrap();
        trunc.extend(std::fs::read(&p).unwrap());
    }
    trunc.truncate(trunc.len() - 7);
    write(dir, "trunc.npy", &trunc);
    write(dir, "bad.npz", b"PK not really a zip");
    let y = {
        let p = dir.join("y.npy");
        aekit::data::npy::write_labels(&p, &[0, 1]).unwrap();
        std::fs::read(&p).unwrap()
    };
    write(dir, "nox.npz", &aekit::fuzz::zip_store(&[("y.npy", &y)]));
    write(dir, "bad.idx", b"\x00\x00\x99\x03garbage");
    write(dir, "hdr.idx", b"\x00\x00\x08\x01\x00\x00\x00\x64abc");
    write(dir, "trunc.gz", &[0x1f, 0x8b, 0x08, 0x00, 0x00]);
    std::fs::create_dir_all(dir.join("emptydir")).unwrap();
    write(dir, "junkdir/a/0.png", b"not a png");
    write(dir, "bad.toml", b"[data\nsource = ");
    write(
        dir,
        "unknown.toml",
        b"[data]\nsource = \"shapes\"\nsauce = 1\n[model]\nkind = \"dense\"\nlatent = 2\n",
    );
    write(
        dir,
        "badval.toml",
        b"[model]\nkind = \"dense\"\nlatent = 2\n[train]\noptimizer = \"adagrad\"\n",
    );
    write(dir, "afile", b"x");
    write(
        dir,
        "nan.toml",
        b"[data]\nsource = \"shapes\"\n[model]\nkind = \"dense\"\nlatent = 2\n[train]\nlr = nan\n",
    );
    // A run whose weights are damaged.
    std::fs::create_dir_all(dir.join("runs/corrupt")).unwrap();
    for f in ["config.toml", "config.json", "preprocess.json"] {
        std::fs::copy(dir.join("runs/a").join(f), dir.join("runs/corrupt").join(f)).unwrap();
    }
    write(
        dir,
        "runs/corrupt/model.safetensors",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{}",
    );
}

#[test]
fn bad_inputs_exit_2_with_one_line_naming_the_problem() {
    let d = common::tmp();
    let dir = d.path();
    fixtures(dir);
    // (arguments, words the error line must contain)
    let cases: &[(&[&str], &[&str])] = &[
        (&["train", "--data", "csv:empty.csv"], &["empty.csv"]),
        (&["train", "--data", "csv:ragged.csv"], &["ragged.csv"]),
        (&["train", "--data", "csv:nan.csv"], &["nan.csv"]),
        (&["train", "--data", "csv:text.csv"], &["text.csv"]),
        (&["train", "--data", "csv:missing.csv"], &["missing.csv"]),
        (&["train", "--data", "npy:bad.npy"], &["bad.npy"]),
        (&["train", "--data", "npy:trunc.npy"], &["trunc.npy"]),
        (&["train", "--data", "npz:bad.npz"], &["bad.npz"]),
        (&["train", "--data", "npz:nox.npz"], &["nox.npz", "'x'"]),
        (&["train", "--data", "idx:bad.idx"], &["bad.idx"]),
        (&["train", "--data", "idx:hdr.idx"], &["hdr.idx"]),
        (&["train", "--data", "idx:trunc.gz"], &["trunc.gz"]),
        (&["train", "--data", "images:emptydir"], &["emptydir"]),
        (&["train", "--data", "images:junkdir"], &["junkdir"]),
        (&["train", "--data", "text:nodir"], &["nodir"]),
        (&["train", "--data", "hdf5:x"], &["unknown dataset"]),
        (&["train", "--data", "parquet:x"], &["x", "no such file"]),
        (
            &["train", "--data", "parquet:bad.parquet"],
            &["bad.parquet"],
        ),
        (&["train", "--data", "arrow:bad.parquet"], &["bad.parquet"]),
        (
            &[
                "train",
                "--data",
                "parquet:good.parquet",
                "--columns",
                "nope",
            ],
            &["good.parquet", "'nope' does not exist"],
        ),
        (
            &[
                "train",
                "--data",
                "parquet:good.parquet",
                "--shuffle-buffer",
                "0",
            ],
            &["--shuffle-buffer"],
        ),
        (&["train", "--data", "csv:ragdir"], &["ragged.csv"]),
        (
            &["encode", "runs/a", "--out", "codes.parquet"],
            &["shapes", "table source"],
        ),
        (
            &[
                "train",
                "--data",
                "csv:ragged.csv",
                "--test-data",
                "csv:nan.csv",
            ],
            &["csv"],
        ),
        (&["train", "--config", "bad.toml"], &["bad.toml"]),
        // A file shorter than its header says, even where only its start would be read.
        (
            &["train", "--data", "idx:cut-images", "--limit", "10"],
            &["cut-images", "truncated"],
        ),
        // Other parsers' diagnostics of several lines come out as one.
        (
            &["train", "--data", "npy:badheader.npy"],
            &["badheader.npy", "could not parse"],
        ),
        (
            &["train", "--config", "unknown.toml"],
            &["unknown.toml", "data.sauce"],
        ),
        (&["train", "--config", "badval.toml"], &["badval.toml"]),
        // Non-finite numbers, from a flag (every float flag: src/cli's enumeration test) and
        // from a config file.
        (
            &["train", "--model", "vae", "--kl-warmup-epochs", "nan"],
            &["--kl-warmup-epochs", "not a finite number"],
        ),
        (
            &["train", "--config", "nan.toml"],
            &["nan.toml", "train.lr", "not a finite number"],
        ),
        (&["train", "--config", "missing.toml"], &["missing.toml"]),
        (&["train", "--preset", "nope"], &["nope"]),
        (&["train", "--model", "nope"], &["--model"]),
        (&["train", "--epochs", "0"], &["epochs"]),
        (&["train", "--batch-size", "0"], &["batch_size"]),
        (&["train", "--lr=-1"], &["learning rate"]),
        (&["train", "--lr", "nan"], &["lr"]),
        (&["train", "--val-fraction", "0.95"], &["val_fraction"]),
        (&["train", "--latent", "0"], &["latent"]),
        (&["train", "--hidden", "0"], &["widths"]),
        (&["train", "--noise", "zzz:1"], &["noise"]),
        (&["train", "--task", "zoom:2"], &["task"]),
        (
            &["train", "--model", "conv", "--encoder", "pool:2"],
            &["unknown layer"],
        ),
        (
            &["train", "--model", "conv", "--encoder", "conv:8:40:valid"],
            &["conv:8:40:valid"],
        ),
        (&["train", "--beta", "2"], &["--beta", "--model vae"]),
        (&["train", "--sparsity-target", "0.05"], &["sigmoid"]),
        (&["train", "--contractive=-1"], &["contractive"]),
        (
            &["train", "--hidden-noise", "salt-pepper:0.1"],
            &["hidden_noise"],
        ),
        (&["train", "--threads", "0"], &["--threads"]),
        (&["train", "--max-minutes=-5"], &["max_minutes"]),
        (
            &["train", "--hidden", "100000000"],
            &["parameters", "memory"],
        ),
        (&["train", "--out", "afile/run"], &["afile"]),
        (&["train", "--resume", "nowhere"], &["nowhere"]),
        (&["train", "--resume", "runs/a", "--lr", "0.1"], &["--lr"]),
        (
            &["train", "--resume", "runs/nockpt"],
            &["checkpoint", "is missing", "--init-from"],
        ),
        (&["eval", "nowhere"], &["nowhere"]),
        (&["eval", "runs/a", "--test-limit", "0"], &["no samples"]),
        // Every command that computes a figure from a split refuses an empty one.
        (
            &["probe", "runs/a", "--test-limit", "0"],
            &["no samples to probe"],
        ),
        (&["probe", "runs/a", "--limit", "0"], &["no samples to fit"]),
        (
            &["compare", "runs/a", "--test-limit", "0"],
            &["no samples to compare"],
        ),
        (
            &["eval", "runs/a", "--data", "csv:ragged.csv"],
            &["ragged.csv"],
        ),
        (&["eval", "runs/a", "--scale", "unit"], &["--scale"]),
        (&["eval", "runs/corrupt"], &["model.safetensors"]),
        (&["encode", "runs/a", "--out", "codes.txt"], &["codes.txt"]),
        (
            &[
                "decode",
                "runs/a",
                "--codes",
                "missing.npy",
                "--out",
                "x.npy",
            ],
            &["missing.npy"],
        ),
        (
            &[
                "decode",
                "runs/a",
                "--codes",
                "wrongwidth.csv",
                "--out",
                "x.npy",
            ],
            &["wrongwidth.csv"],
        ),
        (&["reconstruct", "runs/a", "--out", "x.bin"], &["x.bin"]),
        (&["sample", "runs/a"], &["VAE", "--sampler gmm"]),
        (&["sample", "runs/a", "--sampler", "gmm:0"], &["--sampler"]),
        (
            &["sample", "runs/a", "--class", "1"],
            &["--class", "conditional"],
        ),
        (
            &["train", "--data", "csv:nolabels.csv", "--model", "cvae"],
            &["nolabels.csv", "labelled"],
        ),
        (
            &["eval", "runs/a", "--nll-samples", "10"],
            &["probabilistic encoder"],
        ),
        (
            &["encode", "runs/a", "--indices", "--out", "i.npy"],
            &["--indices", "codebook"],
        ),
        (
            &["train", "--model", "iwae", "--importance-samples", "0"],
            &["importance_samples"],
        ),
        (
            &["train", "--binarize", "--scale", "standardize"],
            &["--binarize"],
        ),
        (&["train", "--model", "infovae", "--alpha", "2"], &["alpha"]),
        (&["plot", "runs/a", "nonsense"], &["nonsense"]),
        (
            &["plot", "runs/a", "manifold", "--grid", "100000"],
            &["--grid"],
        ),
        (
            &["plot", "runs/a", "traverse", "--deltas", "1,NaN"],
            &["--deltas"],
        ),
        (&["score", "runs/a", "--threshold", "inf"], &["--threshold"]),
        (
            &["score", "runs/a", "--contamination", "0.9"],
            &["contamination"],
        ),
        (&["score", "runs/a", "--out", "s.txt"], &["s.txt"]),
        (
            &["score", "runs/a", "--score", "negative-elbo"],
            &["negative-ELBO"],
        ),
        (&["upscale", "runs/a"], &["upscale"]),
        (&["compare", "runs/a", "--dims", "0"], &["--dims"]),
        (
            &["probe", "runs/a", "--data", "csv:nolabels.csv"],
            &["labels"],
        ),
        (&["info", "nowhere"], &["nowhere"]),
        (&["init", "afile/x.toml"], &["afile"]),
    ];
    let mut failures = Vec::new();
    for (i, (args, needles)) in cases.iter().enumerate() {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out_dir = format!("out-{i}");
        if args[0] == "train" && !args.contains(&"--out") && !args.contains(&"--resume") {
            all.extend(["--out".into(), out_dir.clone(), "--quiet".into()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args(&all)
            .current_dir(dir)
            .env("AEKIT_CACHE", dir.join("cache"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        let lines = err.lines().filter(|l| !l.trim().is_empty()).count();
        let problem = if out.status.code() != Some(2) {
            Some(format!("exit {:?}", out.status.code()))
        } else if line.is_empty() {
            Some("no error line".into())
        } else if lines != 1 {
            Some(format!("{lines} lines instead of one"))
        } else if let Some(n) = needles.iter().find(|n| !line.contains(*n)) {
            Some(format!("line lacks '{n}'"))
        } else if err.contains("panicked") {
            Some("panicked".into())
        } else if dir.join(&out_dir).exists() {
            Some("left an output directory".into())
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("{args:?}: {p}: {}", err.trim()));
        }
    }
    assert!(cases.len() >= 60, "{} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A disk that fills while a run directory is being created leaves nothing behind: not a
/// directory holding a config without its preprocessing (which looked like a run to resume).
#[test]
fn a_full_disk_while_a_run_is_created_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("kept")).unwrap();
    for (out, file) in [
        ("new", "config.json"),
        ("new", "preprocess.json"),
        ("kept", "preprocess.json"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_aekit"))
            .args([
                "train",
                "--data",
                "shapes",
                "--limit",
                "100",
                "--epochs",
                "1",
                "--hidden",
                "8",
                "--latent",
                "2",
                "--quiet",
                "--no-report",
                "--out",
                out,
            ])
            .env("AEKIT_TEST_DISK_FULL", file)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(file) && stderr.contains("No space left"),
            "{stderr}"
        );
        let path = dir.path().join(out);
        if out == "kept" {
            // A directory the user made stays, as empty as it was.
            assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
        } else {
            assert!(!path.exists(), "{out} with {file} full");
        }
    }
}
