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

/// What the columns chart draws of a typed table's scores.
pub struct ColumnsChart<'a> {
    pub title: String,
    pub columns: &'a [String],
    /// Each column's mean share of a row's score over every row.
    pub mean_share: Vec<f64>,
    /// The same over the flagged rows (none flagged: `None`).
    pub flagged_share: Option<Vec<f64>>,
    /// The rows drawn as a heat map, highest score first.
    pub rows: Vec<ColumnsRow>,
}

/// One row of the columns chart's heat map.
pub struct ColumnsRow {
    pub label: String,
    /// Per column: the row's value as text and the column's share of the row's score.
    pub cells: Vec<(String, f64)>,
    pub flagged: bool,
}

/// The colour of a heat-map cell whose column makes `fraction` of its row's score: white at
/// 0, the figures' red at 1.
pub fn share_color(fraction: f64) -> RGBColor {
    let f = fraction.clamp(0.0, 1.0);
    let mix = |to: u8| (255.0 - f * (255.0 - to as f64)).round() as u8;
    RGBColor(mix(214), mix(39), mix(40))
}

/// Pixel layout of the columns chart's heat map on a canvas of `size`.
#[derive(Debug, Clone, Copy)]
pub struct HeatLayout {
    pub left: i32,
    pub top: i32,
    pub cell_w: i32,
    pub cell_h: i32,
}

impl HeatLayout {
    const LABELS: i32 = 150;
    const HEADER: i32 = 22;
    const CELL_H: i32 = 20;

    /// The height of the bar chart above the heat map, on a canvas `height` high.
    fn bars(height: u32) -> u32 {
        height * 2 / 5
    }

    pub fn of(size: (u32, u32), columns: usize) -> Self {
        Self {
            left: Self::LABELS,
            top: Self::bars(size.1) as i32 + Self::HEADER + 8,
            cell_w: ((size.0 as i32 - Self::LABELS - 12) / columns.max(1) as i32).max(8),
            cell_h: Self::CELL_H,
        }
    }

    /// The top-left pixel of cell (`row`, `column`).
    pub fn cell(&self, row: usize, column: usize) -> (i32, i32) {
        (
            self.left + column as i32 * self.cell_w,
            self.top + row as i32 * self.cell_h,
        )
    }

    /// The canvas height that holds `rows` rows below the bars of a canvas `height` high.
    pub fn height(height: u32, rows: usize) -> u32 {
        Self::bars(height) + (Self::HEADER + 8 + Self::CELL_H * rows as i32 + 10) as u32
    }
}

/// Text cut to `width` pixels at about 7 pixels a character, an ellipsis marking the cut.
fn fit_text(text: &str, width: i32) -> String {
    let most = (width / 7).max(1) as usize;
    if text.chars().count() <= most {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(most.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A typed table's columns: above, each column's mean share of a row's score (grey: every
/// row; red: the flagged rows); below, the highest-scored rows as a heat map, each cell the
/// row's value shaded by the column's share of that row's score.
pub fn columns(chart: &ColumnsChart, size: (u32, u32)) -> Result<RgbImage> {
    let n = chart.columns.len();
    let height = HeatLayout::height(size.1, chart.rows.len());
    canvas((size.0, height), |root| {
        let (top, _) = root.split_vertically(HeatLayout::bars(size.1));
        let most = chart
            .mean_share
            .iter()
            .chain(chart.flagged_share.iter().flatten())
            .fold(0.0f64, |a, &b| a.max(b));
        let xr = -0.5f32..n as f32 - 0.5;
        let yr = 0f32..(most.max(1e-6) * 1.1) as f32;
        let mut c = ChartBuilder::on(&top)
            .caption(&chart.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(xr, yr)
            .map_err(draw_err)?;
        let names = chart.columns;
        let label_width = (size.0 as i32 - 72) / n.max(1) as i32;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-3 || i < 0.0 {
                    return String::new();
                }
                names
                    .get(i as usize)
                    .map_or_else(String::new, |s| fit_text(s, label_width))
            })
            .y_desc("mean share of the score")
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(draw_err)?;
        let grey = RGBColor(127, 127, 127);
        let red = RGBColor(214, 39, 40);
        let width = if chart.flagged_share.is_some() {
            0.4
        } else {
            0.8
        };
        c.draw_series(chart.mean_share.iter().enumerate().map(|(j, &s)| {
            let x = j as f32 - 0.4;
            Rectangle::new([(x, 0.0), (x + width, s as f32)], grey.filled())
        }))
        .map_err(draw_err)?
        .label("every row")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], grey.filled()));
        if let Some(flagged) = &chart.flagged_share {
            c.draw_series(flagged.iter().enumerate().map(|(j, &s)| {
                let x = j as f32;
                Rectangle::new([(x, 0.0), (x + 0.4, s as f32)], red.filled())
            }))
            .map_err(draw_err)?
            .label("flagged rows")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], red.filled()));
        }
        legend(&mut c)?;

        let layout = HeatLayout::of(size, n);
        let font = ("sans-serif", 13).into_font();
        let header = layout.top - HeatLayout::HEADER;
        for (j, name) in chart.columns.iter().enumerate() {
            let (x, _) = layout.cell(0, j);
            root.draw(&Text::new(
                fit_text(name, layout.cell_w - 4),
                (x + 3, header + 4),
                font.clone(),
            ))
            .map_err(draw_err)?;
        }
        for (i, row) in chart.rows.iter().enumerate() {
            let (_, y) = layout.cell(i, 0);
            let label_color = if row.flagged { red } else { BLACK };
            root.draw(&Text::new(
                fit_text(&row.label, HeatLayout::LABELS - 8),
                (6, y + 3),
                font.clone().color(&label_color),
            ))
            .map_err(draw_err)?;
            for (j, (value, fraction)) in row.cells.iter().enumerate() {
                let (x, y) = layout.cell(i, j);
                root.draw(&Rectangle::new(
                    [(x, y), (x + layout.cell_w - 1, y + layout.cell_h - 1)],
                    share_color(*fraction).filled(),
                ))
                .map_err(draw_err)?;
                let ink = if *fraction > 0.6 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    fit_text(value, layout.cell_w - 6),
                    (x + 3, y + 3),
                    font.clone().color(&ink),
                ))
                .map_err(draw_err)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_heat_map_cell_is_shaded_by_its_columns_share_of_the_rows_score() {
        assert_eq!(share_color(0.0), WHITE);
        assert_eq!(share_color(1.0), RGBColor(214, 39, 40));
        assert_eq!(share_color(2.0), share_color(1.0), "clamped");
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        let fractions = [[0.7, 0.2, 0.1], [0.0, 0.25, 0.75]];
        let chart = ColumnsChart {
            title: "t".into(),
            columns: &names,
            mean_share: vec![1.0, 2.0, 3.0],
            flagged_share: Some(vec![2.0, 1.0, 0.5]),
            rows: fractions
                .iter()
                .enumerate()
                .map(|(i, f)| ColumnsRow {
                    label: format!("row {i}"),
                    cells: f.iter().map(|&v| ("value".to_string(), v)).collect(),
                    flagged: i == 0,
                })
                .collect(),
        };
        let size = (960, 560);
        let image = columns(&chart, size).unwrap();
        assert_eq!(image.height(), HeatLayout::height(size.1, 2));
        let layout = HeatLayout::of(size, names.len());
        for (i, row) in fractions.iter().enumerate() {
            for (j, &f) in row.iter().enumerate() {
                // A pixel of the cell's margin, left of where its text starts.
                let (x, y) = layout.cell(i, j);
                let RGBColor(r, g, b) = share_color(f);
                assert_eq!(
                    image.get_pixel(x as u32 + 1, y as u32 + 1).0,
                    [r, g, b],
                    "cell ({i}, {j})"
                );
            }
        }
    }
}
