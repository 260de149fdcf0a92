//! The redesign's guarantees: identical runs write identical files, the weights of
//! fixed-seed runs are those recorded (`bench/weight_hashes.sh`), so that a refactor cannot
//! change training unnoticed, and the library's modules import only those to their left in
//! ARCHITECTURE.md's order.

mod common;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// Every file of a run that does not measure time, as bytes.
fn run_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for sub in ["", "checkpoint"] {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            // Wall-clock measurements differ between identical runs by nature.
            if ["clock.json", "metrics.jsonl", "summary.json"].contains(&name.as_str()) {
                continue;
            }
            files.push((format!("{sub}/{name}"), std::fs::read(&p).unwrap()));
        }
    }
    files
}

#[test]
fn the_same_run_twice_writes_the_same_bytes() {
    let dir = common::tmp();
    let mut cfg = common::tiny_config();
    cfg.model = aekit::ModelConfig::new(aekit::VaeConfig::new(vec![16], 2));
    let mut written = Vec::new();
    for name in ["a", "b"] {
        let out = dir.path().join(name);
        aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
        written.push(run_files(&out));
    }
    let names: Vec<&str> = written[0].iter().map(|(n, _)| n.as_str()).collect();
    for must in [
        "/model.safetensors",
        "checkpoint/model.safetensors",
        "checkpoint/optimizer.bpk",
        "checkpoint/state.json",
        "/config.toml",
    ] {
        assert!(names.contains(&must), "{names:?}");
    }
    for ((name, a), (_, b)) in written[0].iter().zip(&written[1]) {
        assert!(a == b, "{name} differs between two identical runs");
    }
}

/// Whether `gemm` runs its AVX-512 kernels here (aekit enables its `x86-v4` feature, and
/// `gemm` then picks them at run time on CPUs with these extensions, as `pulp`'s V4 level
/// requires). They sum in another order than the AVX2 kernels, so the weights' last bits differ.
fn gemm_uses_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512cd")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `name tensor hash` lines for run `name`, from each recorded file whose kernels this CPU
/// runs: `bench/weight_hashes.avx2.txt` (gemm's AVX2 kernels with the blocking of Intel's
/// caches) and `bench/weight_hashes.avx2-epyc.txt` (the same kernels on an AMD EPYC, whose
/// cache sizes give `gemm` other block sizes and so another order of summation), or, where
/// `gemm` runs AVX-512 kernels, `bench/weight_hashes.avx512.txt`. The AVX2 file was recorded by
/// a build without gemm's `x86-v4` feature, which reproduced the file recorded on an AVX2
/// machine bit for bit; the EPYC file by the binary of 954c53c, before the data plane.
fn recorded(name: &str) -> Vec<Vec<(String, String)>> {
    let texts: &[&str] = if gemm_uses_avx512() {
        &[include_str!("../bench/weight_hashes.avx512.txt")]
    } else {
        &[
            include_str!("../bench/weight_hashes.avx2.txt"),
            include_str!("../bench/weight_hashes.avx2-epyc.txt"),
        ]
    };
    texts
        .iter()
        .map(|text| {
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(' ');
                    (f.next()? == name)
                        .then(|| (f.next().unwrap().to_string(), f.next().unwrap().to_string()))
                })
                .collect()
        })
        .collect()
}

/// A few of the recorded configurations, trained through the CLI as the script does.
#[test]
fn fixed_seed_runs_give_the_weights_recorded_before_the_redesign() {
    let dir = common::tmp();
    let data = [
        "--data",
        "shapes",
        "--shapes-train",
        "256",
        "--shapes-test",
        "64",
        "--batch-size",
        "32",
        "--seed",
        "7",
        "--threads",
        "2",
        "-q",
        "--no-report",
        "--epochs",
        "2",
    ];
    let runs: [(&str, &[&str]); 4] = [
        ("dense", &[]),
        ("conv", &["--model", "conv"]),
        (
            "vae",
            &[
                "--model",
                "vae",
                "--hidden",
                "64",
                "--latent",
                "4",
                "--beta",
                "2",
                "--kl-warmup-epochs",
                "1",
            ],
        ),
        (
            "sparse-kl",
            &[
                "--code-activation",
                "sigmoid",
                "--sparsity-target",
                "0.05",
                "--sparsity-weight",
                "0.5",
            ],
        ),
    ];
    for (name, extra) in runs {
        let out = dir.path().join(name);
        let status = Command::new(env!("CARGO_BIN_EXE_aekit"))
            .arg("train")
            .args(data)
            .args(extra)
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success(), "{name}");
        let tensors = aekit::model::safetensors::read(&out.join("model.safetensors")).unwrap();
        let hashes: std::collections::BTreeMap<String, String> = tensors
            .iter()
            .map(|(tensor, t)| {
                let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                let got = format!("{:x}", Sha256::digest(&bytes));
                (tensor.clone(), got[..16].to_string())
            })
            .collect();
        let recorded_sets = recorded(name);
        assert!(
            recorded_sets.iter().all(|w| !w.is_empty()),
            "{name} is recorded"
        );
        // The run must reproduce one recorded file's every tensor.
        let matches = recorded_sets.iter().any(|want| {
            want.len() == hashes.len()
                && want
                    .iter()
                    .all(|(tensor, hash)| hashes.get(tensor) == Some(hash))
        });
        assert!(
            matches,
            "{name}: the weights match no recorded file: got {hashes:?}, recorded {recorded_sets:?}"
        );
    }
}

/// The layer of a library module in ARCHITECTURE.md's order (data → model → train → run →
/// eval / explore / export / viz → fit → serve); `None` for the modules every layer may use.
fn layer(module: &str) -> Option<usize> {
    Some(match module {
        "kernels" | "error" | "io" | "device" | "options" => return None,
        "data" => 1,
        "model" => 2,
        "train" => 3,
        "run" => 4,
        "eval" | "explore" | "export" | "viz" | "presets" | "fuzz" => 5,
        "fit" => 6,
        "serve" => 7,
        other => panic!("module {other} has no place in ARCHITECTURE.md's order"),
    })
}

/// Reads every library source file's `crate::` paths (doc comments and test modules aside)
/// and fails where a module reaches a module to its right: data flows one way.
#[test]
fn modules_import_only_what_lies_to_their_left() {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.trim_end_matches(".rs").to_string()
        })
        .collect();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        // The binaries are front ends of the library (`aekit::`), not part of it.
        if ["main", "lib", "cli", "bin"].contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer(&module) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("#[cfg(test)]") {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // Macros exported at the crate's root are not modules; `crate::{a, b}` lists are
                // read by their first name.
                if !modules.contains(&name) {
                    continue;
                }
                checked += 1;
                if let Some(theirs) = layer(&name)
                    && theirs > own
                {
                    wrong.push(format!(
                        "{}:{}: {module} uses crate::{name}",
                        rel.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} crate:: paths read");
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
}
