//! `python/aekit_torch.py`, which knows no variant and runs the `graph` of `config.json`, must
//! rebuild dense (residual too), RAE, WAE, adversarial, convolutional (every layer kind),
//! variational, IWAE, InfoVAE, β-TCVAE, FactorVAE, conditional VAE and VQ-VAE runs in PyTorch
//! with the same outputs (and codebook indices) as aekit. Runs only where a Python with torch, safetensors and numpy is found
//! (`AEKIT_PYTHON`, else `bench/.venv/bin/python`, which `bench/run.sh` creates); skips
//! otherwise with a message (CI has no PyTorch).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use aekit::{Matrix, Split};

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("AEKIT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/.venv/bin/python"));
    let ok = Command::new(&candidate)
        .args(["-c", "import torch, safetensors, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIP: no Python with torch, safetensors and numpy at {} (set AEKIT_PYTHON)",
            candidate.display()
        );
    }
    ok.then_some(candidate)
}

const CHECK: &str = r#"
import sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
from aekit_torch import load_run
model, _ = load_run(sys.argv[2])
x = torch.from_numpy(np.load(sys.argv[3]))
# A conditional model also takes each row's class; a codebook model's indices are compared.
args = (x,) if sys.argv[6] == "-" else (x, torch.from_numpy(np.load(sys.argv[6])).long().reshape(-1))
with torch.no_grad():
    z, y = model.encode(*args), model(*args)
dz = float(np.abs(z.numpy() - np.load(sys.argv[4])).max())
dy = float(np.abs(y.numpy() - np.load(sys.argv[5])).max())
if sys.argv[7] != "-":
    with torch.no_grad():
        idx = model.indices(*args).numpy()
    assert (idx == np.load(sys.argv[7]).astype(np.int64)).all(), "codebook indices differ"
print(dz, dy)
"#;

#[test]
fn pytorch_rebuilds_every_kind_of_run_with_the_same_outputs() {
    let Some(py) = python() else {
        return;
    };
    let dir = common::tmp();
    let models = [
        (
            "dense",
            "[model]\nkind = \"dense\"\nhidden = [32, 16]\nlatent = 4\nactivation = \"elu\"\n",
        ),
        (
            "vae",
            "[model]\nkind = \"vae\"\nhidden = [24]\nlatent = 3\nactivation = \"tanh\"\n",
        ),
        (
            "conv-vae",
            "[model]\nkind = \"vae\"\nhidden = [16]\nlatent = 2\nconv = [\"conv:8:3:s2\", \"conv:4:3:s2\"]\n",
        ),
        (
            "iwae",
            "[model]\nkind = \"iwae\"\nhidden = [24]\nlatent = 3\nimportance_samples = 3\n",
        ),
        (
            "infovae",
            "[model]\nkind = \"infovae\"\nhidden = [24]\nlatent = 3\nalpha = 1.0\n",
        ),
        (
            "btcvae",
            "[model]\nkind = \"btcvae\"\nhidden = [24]\nlatent = 3\nbeta = 6.0\n",
        ),
        (
            "factorvae",
            "[model]\nkind = \"factorvae\"\nhidden = [24]\nlatent = 3\ndiscriminator_hidden = [16]\n",
        ),
        (
            "aae",
            "[model]\nkind = \"aae\"\nhidden = [24]\nlatent = 4\ncode_prior = \"mixture\"\ndiscriminator_hidden = [16]\n",
        ),
        (
            "cvae",
            "[model]\nkind = \"cvae\"\nhidden = [24]\nlatent = 3\nactivation = \"tanh\"\n",
        ),
        (
            "rae",
            "[model]\nkind = \"rae\"\nhidden = [24]\nlatent = 4\ndecoder_regularizer = \"gp\"\n",
        ),
        (
            "wae",
            "[model]\nkind = \"wae\"\nhidden = [24]\nlatent = 4\nmmd_kernel = \"rbf\"\n",
        ),
        (
            "vqvae",
            "[model]\nkind = \"vqvae\"\nencoder = [\"conv:8:3:s2\", \"conv:4:1\"]\ncodes = 16\nema_decay = 0.9\nrestart_dead_codes = true\n",
        ),
        (
            "residual",
            "[model]\nkind = \"dense\"\nhidden = [16]\nlatent = 3\nresidual = true\n",
        ),
        (
            "conv-maxpool-up",
            "[model]\nkind = \"conv\"\nencoder = [\"conv:4:3\", \"maxpool:2:same\", \"conv:4:3:s2:leaky-relu\"]\ndecoder = [\"up:2\", \"conv:4:3:gelu\", \"up:2\", \"conv:1:3\"]\n",
        ),
        (
            "keras",
            "[model]\nkind = \"conv\"\nencoder = [\"conv:16:3\", \"maxpool:2\", \"conv:8:3\", \"maxpool:2\", \"conv:8:3\", \"maxpool:2\"]\n",
        ),
        (
            "mixed",
            "[model]\nkind = \"conv\"\nencoder = [\"conv:8:3:s2\", \"avgpool:2\", \"conv:4:3:valid:tanh\", \"dense:6\"]\ndecoder = [\"dense:36\", \"reshape:4x3x3\", \"up:7x7:bilinear\", \"convt:8:3:s2\", \"convt:4:5:s2:valid:op1\", \"conv:1:5:valid\"]\n",
        ),
    ];
    for (name, toml) in models {
        let mut cfg = aekit::RunConfig::from_toml(
            &format!("[data]\nsource = \"shapes\"\nshapes_train = 200\nshapes_test = 20\n{toml}"),
            Path::new("t.toml"),
        )
        .unwrap();
        cfg.train.epochs = 1;
        let out = dir.path().join(name);
        aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
        let run = aekit::Run::open(&out, &burn::tensor::Device::flex()).unwrap();
        let test = run.load_data(None, Split::Test).unwrap();
        let (x, labels) = (&test.x, test.labels.as_deref());
        let save = |m: &Matrix, f: &str| {
            let p = dir.path().join(format!("{name}-{f}.npy"));
            aekit::data::npy::write(&p, m).unwrap();
            p
        };
        let mut files = vec![
            save(x, "x"),
            save(&run.model.encode_given(x, labels).unwrap(), "z"),
            save(&run.model.reconstruct_given(x, labels).unwrap(), "y"),
        ];
        if run.model.classes() > 0 {
            let l = labels.unwrap();
            let as_rows = Matrix::new(l.len(), 1, l.iter().map(|&c| c as f32).collect()).unwrap();
            files.push(save(&as_rows, "labels"));
        } else {
            files.push("-".into());
        }
        match run.model.codebook_indices(x).unwrap() {
            Some(indices) => files.push(save(&indices, "indices")),
            None => files.push("-".into()),
        }
        let res = Command::new(&py)
            .arg("-c")
            .arg(CHECK)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python"))
            .arg(&out)
            .args(&files)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&res.stdout);
        assert!(
            res.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let diffs: Vec<f64> = text
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        eprintln!(
            "{name}: max |codes| difference {}, outputs {}",
            diffs[0], diffs[1]
        );
        assert!(diffs[0] < 1e-4 && diffs[1] < 1e-5, "{name}: {diffs:?}");
    }
}
