//! A short, fixed run of every fuzz target (the long runs are in FUZZING.md): mutated inputs
//! may be refused, never panic.

#[test]
fn every_parser_survives_mutated_inputs() {
    let dir = tempfile::tempdir().unwrap();
    for target in aekit::fuzz::targets() {
        let report = aekit::fuzz::run(&target, 1500, None, 7, dir.path(), |_| {});
        assert_eq!(report.inputs, 1500, "{}", target.name);
        assert!(
            report.panics.is_empty(),
            "{} panicked: {:?}",
            target.name,
            report.panics.first().map(|p| &p.1)
        );
    }
}

/// An .npz without `x` is refused, not read from its first array (the labels, say).
#[test]
fn an_npz_without_x_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("y.npy");
    aekit::data::npy::write_labels(&y, &[0, 1]).unwrap();
    let bytes = std::fs::read(&y).unwrap();
    let npz = dir.path().join("data.npz");
    std::fs::write(&npz, aekit::fuzz::zip_store(&[("y.npy", &bytes)])).unwrap();
    let err = aekit::data::npy::read_npz(&npz).unwrap_err().to_string();
    assert!(
        err.contains("data.npz") && err.contains("no array 'x'"),
        "{err}"
    );
}
