//! Figures and the report: sizes, determinism, grid cells equal to the decoder's output, blend
//! endpoints, traversals, PCA against a known decomposition, and a report that is
//! self-contained and renders in headless Chromium.

mod common;

use std::path::Path;
use std::process::Command;

use aekit::eval::pca::Pca;
use aekit::viz::{FigureKind, FigureOptions, figure};
use aekit::{Matrix, Run, Split};

fn trained(dir: &Path, name: &str, edit: impl Fn(&mut aekit::RunConfig)) -> Run {
    let mut cfg = common::tiny_config();
    cfg.model = aekit::ModelConfig::new(aekit::DenseConfig::new(vec![32], 2));
    edit(&mut cfg);
    let out = dir.join(name);
    aekit::train(&cfg, &aekit::FitOptions::new(&out)).unwrap();
    Run::open(&out, &burn::tensor::Device::flex()).unwrap()
}

/// The grey value a grid cell shows for an image value.
fn grey(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[test]
fn pca_recovers_a_known_decomposition() {
    // Points on a line along (3, 4)/5 with a little spread along (-4, 3)/5, centred at (1, 2).
    let mut data = Vec::new();
    for i in 0..200 {
        let a = (i as f32 - 99.5) / 10.0;
        // The ±0.5 pattern (+ - - +) is uncorrelated with a over every group of four.
        let b = if i % 4 == 0 || i % 4 == 3 { 0.5 } else { -0.5 };
        data.push(1.0 + 0.6 * a - 0.8 * b);
        data.push(2.0 + 0.8 * a + 0.6 * b);
    }
    let x = Matrix::new(200, 2, data).unwrap();
    let pca = Pca::fit(&x, 2).unwrap();
    assert!((pca.mean[0] - 1.0).abs() < 1e-5 && (pca.mean[1] - 2.0).abs() < 1e-5);
    let c = &pca.components[0];
    assert!(
        (c[0] - 0.6).abs() < 1e-6 && (c[1] - 0.8).abs() < 1e-6,
        "{c:?}"
    );
    // Variance along the line: var of a = (200²-1)/12/100 · n/(n-1).
    let var_a = (200.0f64 * 200.0 - 1.0) / 12.0 / 100.0 * 200.0 / 199.0;
    assert!((pca.explained_variance[0] - var_a).abs() < 1e-3 * var_a);
    assert!((pca.explained_variance[1] - 0.25 * 200.0 / 199.0).abs() < 1e-3);
    let ratio: f64 = pca.explained_variance_ratio.iter().sum();
    assert!((ratio - 1.0).abs() < 1e-9);
    // Full-rank PCA reconstructs exactly; one component keeps the line.
    let back = pca.inverse_transform(&pca.transform(&x).unwrap()).unwrap();
    for (a, b) in back.data.iter().zip(&x.data) {
        assert!((a - b).abs() < 1e-4);
    }
    assert!(Pca::fit(&x, 3).is_err());
}

#[test]
fn figures_have_fixed_sizes_are_deterministic_and_show_the_decoder_output() {
    let d = common::tmp();
    let run = trained(d.path(), "r", |_| {});
    let test = run.load_data(None, Split::Test).unwrap();
    let opts = FigureOptions {
        n: 6,
        grid: 5,
        ..Default::default()
    };
    let fig = |k| figure(&run, &test, k, &opts).unwrap().image;

    // Grids: 28x28 cells at zoom 2 with 2-pixel gaps; manifold cells at zoom 1 without gaps.
    let recon = fig(FigureKind::Reconstructions);
    assert_eq!((recon.width(), recon.height()), (2 + 6 * 58, 2 + 2 * 58));
    let manifold = fig(FigureKind::Manifold);
    assert_eq!((manifold.width(), manifold.height()), (5 * 28, 5 * 28));
    for k in [FigureKind::Codes, FigureKind::Curves] {
        let img = fig(k);
        assert_eq!((img.width(), img.height()), opts.chart_size);
        // Charts are drawn, not blank: many distinct colours.
        let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 20, "{k:?}: {} colours", colours.len());
    }
    for k in FigureKind::ALL {
        if aekit::viz::figures::applies(&run, k) {
            assert_eq!(fig(k), fig(k), "{k:?} is not deterministic");
        }
    }
    assert!(!aekit::viz::figures::applies(&run, FigureKind::Samples));

    // With the shapes' true factors known, the traversal names the factor of each row, as
    // the disentanglement metrics find them.
    let factors = aekit::data::spec::factors(&run.config.data, Split::Test)
        .unwrap()
        .unwrap();
    let with_factors = FigureOptions {
        factors: Some(factors.clone()),
        ..opts.clone()
    };
    let caption = figure(&run, &test, FigureKind::Traverse, &with_factors)
        .unwrap()
        .caption;
    let d = aekit::eval::disentanglement::disentanglement(
        &run.model.encode(&test.x).unwrap(),
        &factors,
        &aekit::data::shapes::FACTOR_NAMES,
        &aekit::data::shapes::FACTOR_IS_CATEGORICAL,
    )
    .unwrap();
    let (f, share) = &d.dimension_factor[0];
    assert!(caption.contains(&format!("z1 {f} {share:.2}")), "{caption}");

    // Each manifold cell shows exactly the decoder's image for its grid code.
    let codes = run.model.encode(&test.x).unwrap();
    let m = aekit::explore::manifold(&run.model, &codes, 5).unwrap();
    for cell in [0, 7, 24] {
        let (r, c) = (cell / 5, cell % 5);
        let img = m.images.row(cell);
        for (y, x) in [(0, 0), (14, 14), (27, 3), (5, 20)] {
            let px = manifold
                .get_pixel((c * 28 + x) as u32, (r * 28 + y) as u32)
                .0;
            assert_eq!(
                px,
                [grey(img[y * 28 + x]); 3],
                "cell {cell} pixel ({y},{x})"
            );
        }
    }
    // The grid spans the codes' percentiles, top row at the largest second coordinate.
    assert!(m.xs[0] < m.xs[4] && m.ys[0] > m.ys[4]);
    assert_eq!(m.codes.row(1), &[m.xs[1], m.ys[0]]);
}

#[test]
fn blend_endpoints_are_the_reconstructions_and_traversal_zero_is_unshifted() {
    let d = common::tmp();
    let run = trained(d.path(), "r", |c| {
        c.model = aekit::ModelConfig::new(aekit::DenseConfig::new(vec![32], 4));
    });
    let test = run.load_data(None, Split::Test).unwrap();
    let (a, b) = (test.x.row(3), test.x.row(8));
    let pair = Matrix::new(2, a.len(), [a, b].concat()).unwrap();
    let recon = run.model.reconstruct(&pair).unwrap();
    for spherical in [false, true] {
        let bl = aekit::explore::blend(&run.model, a, b, 5, spherical).unwrap();
        assert_eq!(bl.weights, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
        assert!(close(bl.latent.row(0), recon.row(0)));
        assert!(close(bl.latent.row(4), recon.row(1)));
        assert_eq!(bl.pixel.row(0), a);
        assert_eq!(bl.pixel.row(4), b);
        // The pixel blend's midpoint is the average image; the latent one is not.
        let mid: Vec<f32> = a.iter().zip(b).map(|(p, q)| 0.5 * p + 0.5 * q).collect();
        assert!(close(bl.pixel.row(2), &mid));
        assert!(!close(bl.latent.row(2), &mid));
    }
    // slerp keeps the norm between two codes of equal norm.
    let s = aekit::explore::slerp(&[1.0, 0.0], &[0.0, 1.0], 0.5);
    assert!(((s[0] * s[0] + s[1] * s[1]).sqrt() - 1.0).abs() < 1e-6);

    let t = aekit::explore::traverse(&run.model, a, &[0, 3], &[0.0, 1.0, 10.0]).unwrap();
    assert_eq!(t.rows, 6);
    for row in [0, 3] {
        assert!(
            t.row(row)
                .iter()
                .zip(recon.row(0))
                .all(|(p, q)| (p - q).abs() < 1e-5),
            "column 0 (delta 0) of row {row} must be the reconstruction"
        );
    }
    assert_ne!(t.row(2), recon.row(0));
    assert!(aekit::explore::traverse(&run.model, a, &[4], &[1.0]).is_err());
    // The quantile function the VAE manifold uses.
    assert!((aekit::explore::normal_quantile(0.95) - 1.6448536).abs() < 1e-6);
    assert!((aekit::explore::normal_quantile(0.5)).abs() < 1e-9);
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(String::from)
}

#[test]
fn report_is_self_contained_html_that_renders_in_headless_chromium() {
    let d = common::tmp();
    let run = trained(d.path(), "r", |_| {});
    let test = run.load_data(None, Split::Test).unwrap();
    let path = aekit::viz::write_report(&run, &test, &FigureOptions::default(), None).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for kind in [
        "curves",
        "reconstructions",
        "codes",
        "manifold",
        "blend",
        "traverse",
    ] {
        assert!(html.contains(&format!("id=\"{kind}\"")), "no {kind} figure");
    }
    // Nothing outside the file: every src is a data URL, no links, scripts or stylesheets.
    assert_eq!(
        html.matches("src=\"").count(),
        html.matches("src=\"data:image/png;base64,").count()
    );
    for external in ["http://", "https://", "<link", "<script", "url("] {
        assert!(!html.contains(external), "report references {external}");
    }
    // Tags balance for the elements the report uses.
    for tag in ["table", "figure", "pre", "tr"] {
        assert_eq!(
            html.matches(&format!("<{tag}")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "<{tag}> unbalanced"
        );
    }

    let Some(browser) = chromium() else {
        eprintln!("SKIP: Chromium not found; install Debian's chromium to render the report");
        return;
    };
    let profile = d.path().join("chromium-profile");
    let shot = d.path().join("shot.png");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", path.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    let dark = img
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c < 128))
        .count();
    let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    let total = (img.width() * img.height()) as usize;
    // Text and figures put dark pixels on a mostly white page.
    assert!(
        dark > total / 200,
        "screenshot looks blank: {dark} dark pixels"
    );
    assert!(
        white > total / 4,
        "screenshot is not the page: {white} white pixels"
    );
}

#[test]
fn plot_and_report_commands_write_their_files() {
    let d = common::tmp();
    let dir = d.path();
    let bin = env!("CARGO_BIN_EXE_aekit");
    let run = |args: &[&str]| {
        let o = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "train", "--data", "shapes", "--limit", "300", "--hidden", "16", "--latent", "2",
        "--epochs", "1", "--quiet", "--out", "r",
    ]);
    assert!(
        dir.join("r/report.html").exists(),
        "train writes the report"
    );
    run(&[
        "plot", "r", "traverse", "--deltas", "-1,0,1", "--out", "t.png",
    ]);
    let t = image::open(dir.join("t.png")).unwrap();
    assert_eq!((t.width(), t.height()), (2 + 3 * 58, 2 + 2 * 58));
    run(&["report", "r", "--out", "rep.html", "--grid", "4"]);
    assert!(
        std::fs::read_to_string(dir.join("rep.html"))
            .unwrap()
            .contains("Manifold")
    );
    let o = Command::new(bin)
        .args(["plot", "r", "samples"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("VAE"));
}
