//! Charts drawn with plotters into an RGB image: the 2-D code map and training curves. Text
//! uses a bundled DejaVu Sans, so a chart looks the same on every machine.

use std::sync::Once;

use image::RgbImage;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::data::Matrix;
use crate::error::{Error, Result};
use crate::train::EpochMetrics;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn ensure_font() {
    REGISTER.call_once(|| {
        // The bundled font is known to parse; a failure would only leave text undrawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn draw_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::invalid(format!("cannot draw the chart: {e:?}"))
}

/// Ten colours that stay apart for the usual ten classes (Tableau 10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn padded_range(v: impl Iterator<Item = f32>) -> std::ops::Range<f32> {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad)..(hi + pad)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// A white `size` canvas that `draw` paints, returned as an image.
fn canvas(size: (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<RgbImage> {
    ensure_font();
    let (w, h) = size;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    RgbImage::from_raw(w, h, buf).ok_or_else(|| Error::invalid("chart buffer has the wrong size"))
}

/// Axis titles and the chart title of a figure.
#[derive(Debug, Clone)]
pub struct Titles {
    pub title: String,
    pub x: String,
    pub y: String,
}

/// Scatter of the rows of `points` (2 columns), coloured by `labels` with a legend of `names`.
pub fn scatter(
    points: &Matrix,
    labels: Option<&[u32]>,
    names: Option<&[String]>,
    titles: &Titles,
    size: (u32, u32),
) -> Result<RgbImage> {
    if points.cols != 2 {
        return Err(Error::invalid(
            "a scatter plot needs 2 coordinates per point",
        ));
    }
    canvas(size, |root| {
        let xr = padded_range((0..points.rows).map(|i| points.row(i)[0]));
        let yr = padded_range((0..points.rows).map(|i| points.row(i)[1]));
        let mut chart = axes(root, titles, (xr, yr), 56, false)?;
        let classes: Vec<u32> = match labels {
            Some(l) => {
                let mut c: Vec<u32> = l.to_vec();
                c.sort_unstable();
                c.dedup();
                c
            }
            None => vec![0],
        };
        for &class in &classes {
            let color = PALETTE[class as usize % PALETTE.len()];
            let pts = (0..points.rows)
                .filter(|&i| labels.is_none_or(|l| l[i] == class))
                .map(|i| (points.row(i)[0], points.row(i)[1]));
            let series = chart
                .draw_series(pts.map(|p| Circle::new(p, 2, color.mix(0.7).filled())))
                .map_err(draw_err)?;
            if labels.is_some() {
                let name = names
                    .and_then(|n| n.get(class as usize).cloned())
                    .unwrap_or_else(|| class.to_string());
                series
                    .label(name)
                    .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
            }
        }
        if labels.is_some() {
            legend(&mut chart)?;
        }
        Ok(())
    })
}

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf32, plotters::coord::types::RangedCoordf32>,
>;

/// Titled axes over `xr` x `yr`; `y_area` is the width left for the y labels and `light_grid`
/// keeps the fine grid lines.
fn axes<'a, 'b>(
    root: &'a Area<'b>,
    titles: &Titles,
    (xr, yr): (std::ops::Range<f32>, std::ops::Range<f32>),
    y_area: u32,
    light_grid: bool,
) -> Result<Chart<'a, 'b>> {
    let mut builder = ChartBuilder::on(root);
    // A chart without a title (the lower panel of a figure) keeps no room for one.
    if !titles.title.is_empty() {
        builder.caption(&titles.title, ("sans-serif", 20));
    }
    let mut chart = builder
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(y_area)
        .build_cartesian_2d(xr, yr)
        .map_err(draw_err)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(&titles.x)
        .y_desc(&titles.y)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15));
    if !light_grid {
        mesh.light_line_style(WHITE.mix(0.0));
    }
    mesh.draw().map_err(draw_err)?;
    Ok(chart)
}

/// The legend of the labelled series, upper right.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(draw_err)
}

/// One line of a line chart.
pub struct Line {
    pub name: String,
    pub points: Vec<(f32, f32)>,
}

/// Lines over a shared x axis, with a legend.
pub fn lines(series: &[Line], titles: &Titles, size: (u32, u32)) -> Result<RgbImage> {
    canvas(size, |root| {
        let all = || series.iter().flat_map(|s| s.points.iter());
        let xr = padded_range(all().map(|p| p.0));
        let yr = padded_range(all().map(|p| p.1));
        let mut chart = axes(root, titles, (xr, yr), 70, true)?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(draw_err)?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            if s.points.len() < 40 {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(draw_err)?;
            }
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// Training and validation loss per epoch; for a VAE also the validation reconstruction term
/// and the (weighted) KL term, the difference of the two.
pub fn training_curves(metrics: &[EpochMetrics], vae: bool, size: (u32, u32)) -> Result<RgbImage> {
    if metrics.is_empty() {
        return Err(Error::invalid("the run has no completed epoch to plot"));
    }
    let per = |f: &dyn Fn(&EpochMetrics) -> Option<f64>| -> Vec<(f32, f32)> {
        metrics
            .iter()
            .filter_map(|m| f(m).map(|v| (m.epoch as f32, v as f32)))
            .collect()
    };
    let mut series = vec![Line {
        name: "training loss".into(),
        points: per(&|m| Some(m.train_loss)),
    }];
    let val = per(&|m| m.val_loss);
    if !val.is_empty() {
        series.push(Line {
            name: "validation loss".into(),
            points: val,
        });
    }
    if vae {
        let recon = per(&|m| m.val_recon);
        if !recon.is_empty() {
            series.push(Line {
                name: "validation reconstruction".into(),
                points: recon,
            });
            series.push(Line {
                name: "validation KL (weighted)".into(),
                points: per(&|m| Some(m.val_loss? - m.val_recon?)),
            });
        }
    }
    lines(
        &series,
        &Titles {
            title: "Training curves".into(),
            x: "epoch".into(),
            y: "loss per element".into(),
        },
        size,
    )
}

/// Precision against recall (log scale) of retrieval curves.
pub fn retrieval_chart(curves: &[crate::eval::retrieval::RetrievalCurve]) -> Result<RgbImage> {
    let series: Vec<Line> = curves
        .iter()
        .map(|c| Line {
            name: format!("{} {}-d", c.method, c.dims),
            points: c
                .recall
                .iter()
                .zip(&c.precision)
                .map(|(r, p)| ((100.0 * r).log10() as f32, *p as f32))
                .collect(),
        })
        .collect();
    let titles = Titles {
        title: "Document retrieval: precision against recall".into(),
        x: "recall, log10 of percent (-1 = 0.1%, 2 = 100%)".into(),
        y: "precision".into(),
    };
    lines(&series, &titles, (720, 480))
}

/// Squared error per image against code size: PCA as a line, each run as a point.
pub fn comparison_chart(rows: &[crate::eval::compare::ComparisonRow]) -> Result<RgbImage> {
    let mut series = vec![Line {
        name: "PCA".into(),
        points: rows
            .iter()
            .filter(|r| r.run.is_none())
            .map(|r| (r.dims as f32, r.sse_per_image as f32))
            .collect(),
    }];
    for r in rows.iter().filter(|r| r.run.is_some()) {
        series.push(Line {
            name: format!("{} ({})", r.method, r.run.as_deref().unwrap_or("")),
            points: vec![(r.dims as f32, r.sse_per_image as f32)],
        });
    }
    let titles = Titles {
        title: "Reconstruction error against code size".into(),
        x: "code dimensions".into(),
        y: "squared error per test sample".into(),
    };
    lines(&series, &titles, (720, 480))
}

/// What the series chart draws of one series.
pub struct SeriesChart<'a> {
    pub title: String,
    pub channels: &'a [String],
    /// `points × channels`: the values and their reconstruction (NaN where no window reached).
    pub values: &'a Matrix,
    pub reconstruction: &'a Matrix,
    pub scores: &'a [f64],
    pub threshold: f64,
    pub flagged: &'a [bool],
    /// Points labelled anomalous, when labels are known.
    pub anomalies: Option<Vec<usize>>,
    /// Points of the training range, from the start.
    pub training: usize,
}

/// Runs of consecutive `true` as `[start, end)` ranges.
fn spans(flags: impl Iterator<Item = bool>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut n = 0;
    for (i, f) in flags.enumerate() {
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
        n = i + 1;
    }
    if let Some(s) = start {
        out.push((s, n));
    }
    out
}

/// A series above its anomaly score: each channel and its reconstruction, the training range
/// shaded grey, flagged spans shaded red (in both panels), labelled anomalies marked; below,
/// the point score with the threshold.
pub fn series(chart: &SeriesChart, size: (u32, u32)) -> Result<RgbImage> {
    let n = chart.values.rows;
    let channels = chart.values.cols;
    let flagged = spans(chart.flagged.iter().copied());
    let xr = 0f32..(n.max(2) - 1) as f32;
    let shade = |c: &mut Chart, yr: &std::ops::Range<f32>| -> Result<()> {
        if chart.training > 0 {
            c.draw_series(std::iter::once(Rectangle::new(
                [(0.0, yr.start), ((chart.training - 1) as f32, yr.end)],
                BLACK.mix(0.07).filled(),
            )))
            .map_err(draw_err)?;
        }
        c.draw_series(flagged.iter().map(|&(s, e)| {
            Rectangle::new(
                [(s as f32 - 0.5, yr.start), (e as f32 - 0.5, yr.end)],
                RGBColor(214, 39, 40).mix(0.18).filled(),
            )
        }))
        .map_err(draw_err)?;
        Ok(())
    };
    canvas(size, |root| {
        let (top, bottom) = root.split_vertically(size.1 * 66 / 100);
        let values = chart.values.data.iter().chain(&chart.reconstruction.data);
        let yr = padded_range(values.copied());
        let titles = Titles {
            title: chart.title.clone(),
            x: String::new(),
            y: "value".into(),
        };
        let mut c = axes(&top, &titles, (xr.clone(), yr.clone()), 60, false)?;
        shade(&mut c, &yr)?;
        for ch in 0..channels {
            let color = PALETTE[(2 * ch) % PALETTE.len()];
            let recon_color = PALETTE[(2 * ch + 1) % PALETTE.len()];
            let line = |m: &Matrix| -> Vec<(f32, f32)> {
                (0..n)
                    .map(|i| (i as f32, m.row(i)[ch]))
                    .filter(|p| p.1.is_finite())
                    .collect()
            };
            let name = chart.channels.get(ch).cloned().unwrap_or_default();
            c.draw_series(LineSeries::new(line(chart.values), color.stroke_width(1)))
                .map_err(draw_err)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            c.draw_series(LineSeries::new(
                line(chart.reconstruction),
                recon_color.stroke_width(1),
            ))
            .map_err(draw_err)?
            .label(format!("{name}, reconstructed"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], recon_color));
        }
        if let Some(anomalies) = &chart.anomalies {
            let marks = anomalies.iter().map(|&i| {
                TriangleMarker::new(
                    (i as f32, yr.start + (yr.end - yr.start) * 0.03),
                    5,
                    RGBColor(214, 39, 40).filled(),
                )
            });
            c.draw_series(marks)
                .map_err(draw_err)?
                .label("labelled anomaly")
                .legend(|(x, y)| {
                    TriangleMarker::new((x + 8, y), 5, RGBColor(214, 39, 40).filled())
                });
        }
        legend(&mut c)?;
        let scores = chart.scores.iter().map(|&s| s as f32);
        let sr = padded_range(
            scores
                .clone()
                .chain(std::iter::once(chart.threshold as f32)),
        );
        let titles = Titles {
            title: String::new(),
            x: "time step".into(),
            y: "point score".into(),
        };
        let mut c = axes(&bottom, &titles, (xr.clone(), sr.clone()), 60, false)?;
        shade(&mut c, &sr)?;
        c.draw_series(LineSeries::new(
            scores
                .enumerate()
                .map(|(i, s)| (i as f32, s))
                .filter(|p| p.1.is_finite()),
            BLACK.stroke_width(1),
        ))
        .map_err(draw_err)?;
        let t = chart.threshold as f32;
        c.draw_series(LineSeries::new(
            [(xr.start, t), (xr.end, t)],
            RGBColor(214, 39, 40).stroke_width(1),
        ))
        .map_err(draw_err)?
        .label(format!("threshold {:.4}", chart.threshold))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(214, 39, 40)));
        legend(&mut c)?;
        Ok(())
    })
}
