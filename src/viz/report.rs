//! A self-contained HTML report of a run: the figures (PNG embedded as data URLs), the model,
//! the training summary, the test metrics and the config. It references nothing outside
//! itself, so it can be mailed, archived or opened offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::data::Dataset;
use crate::error::Result;
use crate::run::Run;
use crate::viz::figures::{FigureKind, FigureOptions, applies, figure};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table of one row per class: the class's name, then its numeric cells under `headers`.
fn per_class_table<'a, const N: usize>(
    w: &mut String,
    headers: &[&str; N],
    rows: impl Iterator<Item = (&'a str, [String; N])>,
) {
    let _ = write!(w, "<table><tr><th>class</th>");
    for h in headers {
        let _ = write!(w, "<th>{h}</th>");
    }
    let _ = writeln!(w, "</tr>");
    for (name, cells) in rows {
        let _ = write!(w, "<tr><td>{}</td>", escape(name));
        for c in cells {
            let _ = write!(w, "<td class=n>{c}</td>");
        }
        let _ = writeln!(w, "</tr>");
    }
    let _ = writeln!(w, "</table>");
}

fn png_data_url(img: &image::RgbImage) -> Result<String> {
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(crate::viz::grid::encode_png(img)?)
    ))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}\
figure img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}\
.skip{color:#888}";

/// Writes `report.html` for `run` evaluated on `data` (the test split) into `out` (default:
/// the run directory). Figures that do not apply to the run are listed as such.
pub fn write_report(
    run: &Run,
    data: &Dataset,
    opts: &FigureOptions,
    out: Option<&Path>,
) -> Result<PathBuf> {
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.dir.path.join("report.html"));
    let html = render(run, data, opts)?;
    crate::io::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// The report as a string.
pub fn render(run: &Run, data: &Dataset, opts: &FigureOptions) -> Result<String> {
    let name = run
        .dir
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let cfg = run.model.config();
    let mut h = String::new();
    let w = &mut h;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>aekit report: {}</title><style>{STYLE}</style></head><body>",
        escape(&name)
    );
    let _ = writeln!(w, "<h1>aekit report: {}</h1>", escape(&name));
    let _ = writeln!(
        w,
        "<p>{} &middot; {} parameters &middot; {} loss &middot; data {}</p>",
        escape(&cfg.describe()),
        run.model.num_params(),
        cfg.loss_name(),
        escape(&data.origin)
    );

    let _ = writeln!(w, "<h2>Training</h2>\n<table>");
    if let Ok(s) = run.dir.summary() {
        let rows = [
            ("epochs", s.epochs_completed.to_string()),
            ("stopped", s.stop_reason.clone()),
            (
                "best epoch",
                s.best_epoch.map_or("-".into(), |e| e.to_string()),
            ),
            (
                "best validation loss (per element)",
                s.best_val_loss.map_or("-".into(), |v| format!("{v:.6}")),
            ),
            ("training time", format!("{:.1} s", s.train_seconds)),
            ("throughput", format!("{:.0} samples/s", s.samples_per_sec)),
            ("training samples", s.train_samples.to_string()),
        ];
        for (k, v) in rows {
            let _ = writeln!(w, "<tr><th>{}</th><td class=n>{}</td></tr>", k, escape(&v));
        }
    } else {
        let _ = writeln!(
            w,
            "<tr><td>no summary.json: training did not finish</td></tr>"
        );
    }
    let _ = writeln!(w, "</table>");

    let m = crate::eval::evaluate(run, data)?;
    let _ = writeln!(
        w,
        "<h2>Test reconstruction ({} samples)</h2>\n<table>",
        m.samples
    );
    let mut rows = vec![
        (
            "mean squared error per element",
            format!("{:.6}", m.mse_per_pixel),
        ),
        (
            "squared error per sample",
            format!("{:.4}", m.sse_per_image),
        ),
        (
            "mean absolute error per element",
            format!("{:.6}", m.mae_per_pixel),
        ),
    ];
    if let Some(b) = m.bce_per_pixel {
        rows.push(("binary cross-entropy per element", format!("{b:.6}")));
    }
    if let Some(e) = crate::eval::elbo(run, data, opts.seed)? {
        rows.push((
            "negative ELBO per sample (recon + KL)",
            format!(
                "{:.3} = {:.3} + {:.3}",
                e.loss_per_image, e.recon_per_image, e.kl_per_image
            ),
        ));
    }
    for (k, v) in rows {
        let _ = writeln!(w, "<tr><th>{k}</th><td class=n>{v}</td></tr>");
    }
    let _ = writeln!(w, "</table>");
    if !m.per_class.is_empty() {
        per_class_table(
            w,
            &["samples", "MSE per element", "squared error per sample"],
            m.per_class.iter().map(|c| {
                let cells = [
                    c.samples.to_string(),
                    format!("{:.6}", c.mse_per_pixel),
                    format!("{:.4}", c.sse_per_image),
                ];
                (c.name.as_str(), cells)
            }),
        );
    }

    if run.preprocessor.columns.is_some() {
        let _ = writeln!(
            w,
            "<h3>Columns</h3>\n<table><tr><th>column</th><th>kind</th><th>missing</th><th>reconstructed right</th><th>RMSE (own units)</th><th>mean share of the score</th></tr>"
        );
        for q in crate::eval::columns::column_quality(run, &data.x)? {
            let _ = writeln!(
                w,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{:.4}</td></tr>",
                escape(&q.column),
                q.kind,
                q.missing,
                q.accuracy
                    .map_or("-".into(), |a| format!("{:.1}%", 100.0 * a)),
                q.rmse.map_or("-".into(), |r| format!("{r:.4}")),
                q.mean_share
            );
        }
        let _ = writeln!(w, "</table>");
    }

    let _ = writeln!(w, "<h2>Figures</h2>");
    for kind in FigureKind::ALL {
        if !applies(run, kind) {
            continue;
        }
        match figure(run, data, kind, opts) {
            Ok(f) => {
                let _ = writeln!(
                    w,
                    "<figure id=\"{}\"><h3>{}</h3><img alt=\"{}\" width=\"{}\" height=\"{}\" src=\"{}\"><figcaption>{}</figcaption></figure>",
                    kind.name(),
                    escape(&f.title),
                    escape(&f.title),
                    f.image.width(),
                    f.image.height(),
                    png_data_url(&f.image)?,
                    escape(&f.caption)
                );
            }
            Err(e) => {
                let _ = writeln!(
                    w,
                    "<p class=skip>{}: not drawn ({})</p>",
                    kind.name(),
                    escape(&e.to_string())
                );
            }
        }
    }

    let toml = toml::to_string_pretty(&run.config).unwrap_or_default();
    let _ = writeln!(
        w,
        "<h2>Configuration</h2>\n<pre>{}</pre>\n<p class=skip>Written by aekit {}.</p>\n</body></html>",
        escape(&toml),
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}

/// Misclassified test images per class in a figure: at most this many a class.
const MISTAKES_PER_CLASS: usize = 10;

/// Writes `report.html` of a classifier run scored on `data` (labelled, preprocessed as the
/// run's) into `out` (default: the run directory): accuracy, the confusion matrix, each
/// class's scores, the fine-tuning curves and, for images, each class's misclassified samples.
pub fn write_classifier_report(
    run: &crate::run::classifier::ClassifierRun,
    data: &Dataset,
    out: Option<&Path>,
) -> Result<PathBuf> {
    let path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.run.dir.path.join("report.html"));
    let html = render_classifier(run, data)?;
    crate::io::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// The classifier report as a string.
pub fn render_classifier(
    run: &crate::run::classifier::ClassifierRun,
    data: &Dataset,
) -> Result<String> {
    let (e, predicted) = crate::eval::classify::evaluate(run, data)?;
    let info = &run.info;
    let name = run
        .run
        .dir
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "classifier".into());
    let mut h = String::new();
    let w = &mut h;
    let _ = writeln!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>aekit classifier report: {0}</title><style>{STYLE}</style></head><body>\n<h1>aekit classifier report: {0}</h1>",
        escape(&name)
    );
    let _ = writeln!(
        w,
        "<p>{} encoder {} + {} head &middot; {} classes &middot; {} labelled training rows ({} held out) &middot; kept epoch {}</p>",
        escape(&run.run.model.config().describe()),
        if info.finetune.from_scratch {
            "trained from scratch".to_string()
        } else {
            format!("pretrained in {}", escape(&info.source))
        },
        escape(&info.head.to_string()),
        info.classes,
        info.train_rows,
        info.validation_rows,
        info.kept_epoch
    );
    let _ = writeln!(
        w,
        "<h2>Test ({} samples of {})</h2>\n<table><tr><th>accuracy</th><td class=n>{:.2}%</td></tr><tr><th>macro F1</th><td class=n>{:.4}</td></tr></table>",
        e.samples,
        escape(&e.origin),
        100.0 * e.accuracy,
        e.macro_f1
    );

    let _ = writeln!(
        w,
        "<h3>Confusion matrix</h3>\n<p class=skip>Rows: the true class; columns: the predicted class; shaded by the share of the row.</p>\n<table><tr><th></th>"
    );
    for c in &e.per_class {
        let _ = write!(w, "<th>{}</th>", escape(&c.name));
    }
    let _ = writeln!(w, "</tr>");
    for (t, row) in e.confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        let _ = write!(w, "<tr><th>{}</th>", escape(&run.class_name(t)));
        for &n in row {
            let alpha = n as f64 / total;
            let _ = write!(
                w,
                "<td class=n style=\"background:rgba(31,119,180,{alpha:.3})\">{n}</td>"
            );
        }
        let _ = writeln!(w, "</tr>");
    }
    let _ = writeln!(w, "</table>\n<h3>Per class</h3>");
    per_class_table(
        w,
        &["precision", "recall", "F1", "samples"],
        e.per_class.iter().map(|c| {
            let cells = [
                format!("{:.4}", c.precision),
                format!("{:.4}", c.recall),
                format!("{:.4}", c.f1),
                c.support.to_string(),
            ];
            (c.name.as_str(), cells)
        }),
    );

    let history = run.history()?;
    if !history.is_empty() {
        let curve =
            |name: &str, value: &dyn Fn(&crate::train::finetune::FinetuneEpoch) -> Option<f64>| {
                crate::viz::charts::Line {
                    name: name.to_string(),
                    points: history
                        .iter()
                        .filter_map(|m| value(m).map(|v| (m.epoch as f32, (100.0 * v) as f32)))
                        .collect(),
                }
            };
        let mut lines = vec![curve("training", &|m| Some(m.train_accuracy))];
        if history.iter().any(|m| m.val_accuracy.is_some()) {
            lines.push(curve("validation", &|m| m.val_accuracy));
        }
        let chart = crate::viz::charts::lines(
            &lines,
            &crate::viz::charts::Titles {
                title: "Fine-tuning".into(),
                x: "epoch".into(),
                y: "accuracy (%)".into(),
            },
            (720, 400),
        )?;
        let _ = writeln!(
            w,
            "<figure id=\"curves\"><h3>Fine-tuning</h3><img alt=\"accuracy per epoch\" src=\"{}\"><figcaption>Accuracy per epoch; the head alone learnt in the first {} epochs.</figcaption></figure>",
            png_data_url(&chart)?,
            info.finetune.freeze_epochs
        );
    }

    if let Ok((c, height, width)) = run.run.image_shape() {
        let mut grid = crate::viz::grid::ImageGrid::new(height, width, c);
        let truth = data.labels.as_deref().unwrap_or_default();
        for class in 0..info.classes {
            let wrong: Vec<Vec<f32>> = (0..data.len())
                .filter(|&r| truth[r] as usize == class && predicted[r] as usize != class)
                .take(MISTAKES_PER_CLASS)
                .map(|r| data.x.row(r).to_vec())
                .collect();
            grid.push_row(wrong);
        }
        if grid.cols() > 0 {
            let names: Vec<String> = (0..info.classes).map(|c| run.class_name(c)).collect();
            let _ = writeln!(
                w,
                "<figure id=\"mistakes\"><h3>Misclassified test samples</h3><img alt=\"misclassified samples\" src=\"{}\"><figcaption>One row per true class ({}), its first {} misclassified samples; an empty row is a class without mistakes.</figcaption></figure>",
                png_data_url(&grid.render())?,
                escape(&names.join(", ")),
                MISTAKES_PER_CLASS
            );
        }
    }
    let _ = writeln!(
        w,
        "<h2>Fine-tuning settings</h2>\n<pre>{}</pre>\n<p class=skip>Written by aekit {}.</p>\n</body></html>",
        escape(&serde_json::to_string_pretty(&info.finetune).unwrap_or_default()),
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}
