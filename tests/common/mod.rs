//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/data/<name>` beside the repository, if present. Tests that need it print why
/// they skip when it is absent.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("data")
        .join(name);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} not found; this test needs the shared datasets beside the repository",
            p.display()
        );
        None
    }
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A tiny, fast config on the built-in shapes.
pub fn tiny_config() -> aekit::RunConfig {
    let mut cfg = aekit::RunConfig::default();
    cfg.data.shapes_train = 400;
    cfg.data.shapes_test = 100;
    cfg.model = aekit::ModelConfig::dense(aekit::DenseConfig::new(vec![32], 4));
    cfg.train.epochs = 2;
    cfg.train.batch_size = 50;
    cfg
}
