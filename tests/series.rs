//! Time series: windows over a table of time points, point scores mapped back from the
//! windows, the series figure, the 1-D convolutional variant, and the series' bad inputs.

mod common;

use std::path::Path;
use std::process::Command;

use aekit::data::series::{PointReduce, load_windows, window_starts};
use aekit::data::{DataConfig, Matrix, Split};

use common::run_aekit as aekit;

use common::aekit_stdout as ok;

/// A sine of period 50 with a little noise, 2,000 points, and a spike of +3 at point 1,500
/// labelled 1; times are ISO strings one second apart.
fn spiked_series(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("t,value,anomaly\n");
    let mut state = 12345u64;
    for i in 0..2000 {
        let noise = (common::uniform(&mut state) - 0.5) * 0.1;
        let mut v = (2.0 * std::f64::consts::PI * i as f64 / 50.0).sin() + noise;
        let label = u8::from(i == 1500);
        if i == 1500 {
            v += 3.0;
        }
        text.push_str(&format!(
            "2020-01-01T{:02}:{:02}:{:02},{v:.5},{label}\n",
            i / 3600,
            (i / 60) % 60,
            i % 60
        ));
    }
    let path = dir.join("spiked.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains `run` in `dir` on the spiked series `source` (`csv:PATH`), its first 1,000 points the
/// training range, standardised, with `extra` flags.
fn train_spiked(dir: &Path, source: &str, run: &str, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--data",
        source,
        "--time-column",
        "t",
        "--label-column",
        "anomaly",
        "--train-points",
        "1000",
        "--scale",
        "standardize",
        "--quiet",
        "--no-report",
        "--out",
        run,
    ];
    args.extend_from_slice(extra);
    ok(&args, dir);
}

fn series_config(path: &Path, window: usize) -> DataConfig {
    DataConfig {
        window: Some(window),
        ..DataConfig::for_source(&format!("csv:{}", path.display()))
    }
}

#[test]
fn windows_cover_every_point_and_map_back_to_it() {
    assert_eq!(window_starts(10, 4, 3), vec![0, 3, 6]);
    // The stride does not land on the end: one more window ends at the last point.
    assert_eq!(window_starts(11, 4, 3), vec![0, 3, 6, 7]);
    assert_eq!(window_starts(3, 4, 1), Vec::<usize>::new());

    let dir = common::tmp();
    let path = dir.path().join("two.csv");
    // Two channels; channel b is 10 times channel a.
    let mut text = String::from("a,b\n");
    for i in 0..9 {
        text.push_str(&format!("{i},{}\n", 10 * i));
    }
    std::fs::write(&path, text).unwrap();
    let mut cfg = series_config(&path, 4);
    cfg.stride = Some(2);
    let w = load_windows(&cfg, Split::Test).unwrap();
    // Starts 0, 2, 4 and 5 (the last one ends at point 8).
    assert_eq!(
        w.at.iter().map(|a| a.start).collect::<Vec<_>>(),
        [0, 2, 4, 5]
    );
    assert_eq!(w.data.sample_shape, vec![2, 4]);
    // A window is laid out channel by channel.
    assert_eq!(
        w.data.x.row(1),
        &[2.0, 3.0, 4.0, 5.0, 20.0, 30.0, 40.0, 50.0]
    );

    // Every window element set to its window's index: a point's mean is the mean of the
    // indices of the windows that hold it, its max the largest.
    let per_window = Matrix::new(
        4,
        8,
        (0..4)
            .flat_map(|r| std::iter::repeat_n(r as f32, 8))
            .collect(),
    )
    .unwrap();
    let mean = &w.to_points(&per_window, PointReduce::Mean)[0];
    let max = &w.to_points(&per_window, PointReduce::Max)[0];
    // Point 5 lies in windows 1 (2..6), 2 (4..8) and 3 (5..9).
    assert_eq!(mean.row(5), &[2.0, 2.0]);
    assert_eq!(max.row(5), &[3.0, 3.0]);
    assert_eq!(mean.row(0), &[0.0, 0.0]);
    assert_eq!(max.row(8), &[3.0, 3.0]);
    // Point scores sum the channels before reducing over windows.
    let scores = &w.point_scores(&per_window, PointReduce::Max)[0];
    assert_eq!(scores[5], 6.0);
    // Whole windows: point 5's is the mean of windows 1, 2 and 3's totals (8 elements each).
    let scores = &w.point_scores(&per_window, PointReduce::Window)[0];
    assert_eq!(scores[5], 8.0 * (1.0 + 2.0 + 3.0) / 3.0);
    assert_eq!(scores[0], 0.0);
}

#[test]
fn a_spike_in_one_point_scores_highest_at_that_point() {
    let dir = common::tmp();
    let data = spiked_series(dir.path());
    let source = format!("csv:{}", data.display());
    for model in ["dense", "conv1d", "gru", "lstm"] {
        let run = format!("run-{model}");
        train_spiked(
            dir.path(),
            &source,
            &run,
            &["--window", "32", "--model", model, "--epochs", "15"],
        );
        for reduce in ["mean", "max"] {
            let out = dir.path().join(format!("{model}-{reduce}.csv"));
            let printed = ok(
                &[
                    "score",
                    &run,
                    "--point-score",
                    reduce,
                    "--out",
                    out.to_str().unwrap(),
                ],
                dir.path(),
            );
            assert!(printed.contains("1 of 1 series"), "{printed}");
            let text = std::fs::read_to_string(&out).unwrap();
            let rows: Vec<Vec<&str>> = text
                .lines()
                .skip(1)
                .map(|l| l.split(',').collect())
                .collect();
            assert_eq!(rows.len(), 2000, "one row per time point");
            assert_eq!(rows[1500][1], "2020-01-01T00:25:00");
            assert_eq!(
                text.lines().next().unwrap(),
                "series,time,score,anomaly,label,training,value,value_reconstructed"
            );
            // The value as read, and a reconstruction that misses the spike by about its size.
            let value: f64 = rows[1500][6].parse().unwrap();
            let recon: f64 = rows[1500][7].parse().unwrap();
            assert!((value - 3.0).abs() < 0.2, "{value}");
            assert!((value - recon).abs() > 1.5, "{value} vs {recon}");
            let score = |r: &Vec<&str>| r[2].parse::<f64>().unwrap();
            let top = (0..rows.len())
                .max_by(|&a, &b| score(&rows[a]).total_cmp(&score(&rows[b])))
                .unwrap();
            assert_eq!(
                top, 1500,
                "{model} {reduce}: the spike's point scores highest"
            );
            assert_eq!(rows[1500][3], "1", "the spike is flagged");
            assert_eq!(rows[1500][4], "1", "its label is carried");
            assert_eq!(
                (rows[999][5], rows[1000][5]),
                ("1", "0"),
                "the training range"
            );
            // Far from the spike, well under the spike's score.
            assert!(score(&rows[1200]) < score(&rows[1500]) / 20.0);
        }
    }
    // Another file with other channels is refused naming them.
    let other = dir.path().join("other.csv");
    let mut text = String::from("t,value,extra\n");
    for i in 0..100 {
        text.push_str(&format!("{i},{},{}\n", i % 7, i % 3));
    }
    std::fs::write(&other, text).unwrap();
    let out = aekit(
        &[
            "score",
            "run-dense",
            "--data",
            &format!("csv:{}", other.display()),
        ],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the series has 2 channels (value, extra)"),
        "{err}"
    );
    // The training split's windows cover the training range: its summary counts those points
    // alone (the rest have no score: NaN in the output).
    let summary: serde_json::Value = serde_json::from_str(&ok(
        &["score", "run-dense", "--split", "train", "--json"],
        dir.path(),
    ))
    .unwrap();
    assert_eq!(summary["samples"], 1000);
    assert_eq!(summary["anomalies"], 0);
    // The scaling was fitted on the training range's points only: the mean of the first
    // 1,000 values, not of all 2,000 (which the spike moves).
    let pre: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("run-dense/preprocess.json")).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&data).unwrap();
    let values: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let train_mean = values[..1000].iter().sum::<f64>() / 1000.0;
    let offsets = pre["offset"].as_array().unwrap();
    assert_eq!(offsets.len(), 1, "one channel: one offset for every step");
    for o in offsets {
        assert!(
            (o.as_f64().unwrap() - train_mean).abs() < 1e-5,
            "{o} vs {train_mean}"
        );
    }
    // The figure: the series over its scores, the size it promises.
    let png = dir.path().join("series.png");
    let printed = ok(
        &[
            "plot",
            "run-conv1d",
            "series",
            "--out",
            png.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(printed.contains("1 labelled anomalous"), "{printed}");
    let image = image::open(&png).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (960, 620));
    // The flagged span around the spike is shaded red in the score panel (x of point 1,500
    // lies about 3/4 of the way across the plotting area).
    let reddish = (600..800)
        .flat_map(|x| (450..560).map(move |y| (x, y)))
        .filter(|&(x, y)| {
            let p = image.get_pixel(x, y).0;
            p[0] > 230 && p[1] < 225 && p[2] < 225
        })
        .count();
    assert!(reddish > 50, "no flagged span drawn ({reddish} red pixels)");
}

#[test]
fn panels_are_grouped_by_series_and_put_in_time_order() {
    let dir = common::tmp();
    let path = dir.path().join("panel.csv");
    // Two series interleaved, each in reverse time order.
    let mut text = String::from("id,time,x\n");
    for t in (0..6).rev() {
        text.push_str(&format!("b,{t},{}\n", 100 + t));
        text.push_str(&format!("a,{t},{t}\n"));
    }
    std::fs::write(&path, text).unwrap();
    let mut cfg = series_config(&path, 3);
    cfg.series_column = Some("id".into());
    cfg.time_column = Some("time".into());
    let err = load_windows(&cfg, Split::Test).unwrap_err().to_string();
    assert!(
        err.contains("series 'b': time 4 (row 2) comes after 5 (row 0)"),
        "{err}"
    );
    cfg.unordered_time = aekit::data::series::TimeOrder::Sort;
    let w = load_windows(&cfg, Split::Test).unwrap();
    let ids: Vec<_> = w
        .series
        .panels
        .iter()
        .map(|p| p.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["b", "a"], "in order of first appearance");
    assert_eq!(
        w.series.panels[1].values.data,
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    assert_eq!(w.series.panels[0].times, ["0", "1", "2", "3", "4", "5"]);
    // Four windows each; none crosses from one series into the other.
    assert_eq!(w.data.len(), 8);
    assert_eq!(w.data.x.row(4), &[0.0, 1.0, 2.0]);
    // The training range is the first N points of each series.
    cfg.train_points = Some(4);
    let train = load_windows(&cfg, Split::Train).unwrap();
    assert_eq!(train.data.len(), 4);
    assert_eq!(train.data.x.row(1), &[101.0, 102.0, 103.0]);
}

#[test]
fn bad_series_inputs_are_refused_in_one_line() {
    let dir = common::tmp();
    let d = dir.path();
    std::fs::write(d.join("short.csv"), "x\n1\n2\n3\n").unwrap();
    std::fs::write(d.join("ids.csv"), "id,x\na,1\nb,2\nc,3\nd,4\n").unwrap();
    std::fs::write(d.join("back.csv"), "t,x\n1,1\n2,2\n1.5,3\n4,4\n5,5\n").unwrap();
    std::fs::write(d.join("twice.csv"), "t,x\n1,1\n2,2\n2,3\n4,4\n5,5\n").unwrap();
    std::fs::write(d.join("words.csv"), "t,x\nmonday,1\ntuesday,2\nwed,3\n").unwrap();
    std::fs::write(d.join("ok.csv"), "t,x\n1,1\n2,2\n3,3\n4,4\n5,5\n").unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--epochs",
            "1",
            "--quiet",
            "--no-report",
            "--out",
            "run",
        ];
        args.extend_from_slice(extra);
        aekit(&args, d)
    };
    let cases: [(&[&str], &str); 9] = [
        (
            &["--data", "csv:short.csv", "--window", "8"],
            "has 3 points, fewer than --window 8",
        ),
        (
            &[
                "--data",
                "csv:ids.csv",
                "--window",
                "2",
                "--series-column",
                "id",
            ],
            "series column 'id' has a different value on each of its 4 rows",
        ),
        (
            &[
                "--data",
                "csv:back.csv",
                "--window",
                "2",
                "--time-column",
                "t",
            ],
            "time 1.5 (row 2) comes after 2 (row 1)",
        ),
        (
            &[
                "--data",
                "csv:twice.csv",
                "--window",
                "2",
                "--time-column",
                "t",
                "--unordered-time",
                "sort",
            ],
            "time 2 appears twice (rows 1 and 2)",
        ),
        (
            &[
                "--data",
                "csv:words.csv",
                "--window",
                "2",
                "--time-column",
                "t",
            ],
            "time column 't' holds 'monday' at row 0",
        ),
        (
            &["--data", "csv:ok.csv", "--window", "3", "--stride", "4"],
            "--stride must lie in 1..=3",
        ),
        (
            &["--data", "csv:ok.csv", "--time-column", "t"],
            "--time-column describes a time series",
        ),
        (
            &[
                "--data",
                "csv:ok.csv",
                "--window",
                "4",
                "--train-points",
                "3",
            ],
            "--train-points 3 is shorter than --window 4",
        ),
        (
            &["--data", "shapes", "--limit", "50", "--model", "conv1d"],
            "conv1d convolves over time",
        ),
    ];
    for (args, expected) in cases {
        let out = train(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!d.join("run").exists(), "{args:?} left a run behind");
    }
}

/// Autodiff gradients of every parameter `checks` picks (a name to its PyTorch-layout
/// gradient, or `None` to skip) against central finite differences, for a model of `cfg` on
/// inputs `x` of `rows` rows; returns how many tensors were checked.
fn check_gradients(
    cfg: &aekit::ModelConfig,
    rows: usize,
    checks: impl Fn(
        &str,
        &aekit::model::layers::Layer,
        &burn::optim::GradientsParams,
    ) -> Option<Vec<f32>>,
) -> usize {
    use burn::optim::GradientsParams;
    let dev = burn::tensor::Device::flex();
    let m = aekit::Autoencoder::new(cfg, 3, &dev).unwrap();
    let cols = m.input_dim();
    let x = Matrix::new(
        rows,
        cols,
        (0..rows * cols)
            .map(|i| ((i * 37 % 23) as f32 / 23.0) - 0.5)
            .collect(),
    )
    .unwrap();
    let net = m.net().clone();
    let grads = GradientsParams::from_grads(
        common::objective(&net, cfg, &x, &dev.clone().autodiff()).backward(),
        &net,
    );
    let mut checked = 0;
    for name in net.layers.names().to_vec() {
        let layer = net.layers.get(&name).unwrap();
        let Some(g) = checks(&name, layer, &grads) else {
            continue;
        };
        let n = g.len();
        let exported = match layer {
            aekit::model::layers::Layer::Linear(_) => format!("{name}.weight"),
            _ => name.clone(),
        };
        common::check_against_finite_differences(
            &m,
            &exported,
            &g,
            (0..n).step_by((n / 5).max(1)),
            |net| common::objective(net, cfg, &x, &dev).into_scalar::<f32>() as f64,
        );
        checked += 1;
    }
    checked
}

fn values_of(t: burn::tensor::Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

#[test]
fn conv1d_gradients_match_finite_differences() {
    use aekit::model::layers::Layer;
    let mut arch = aekit::model::variants::conv1d::Conv1dConfig {
        filters: vec![3, 2],
        kernel: 3,
        activation: aekit::model::Activation::Tanh,
        ..Default::default()
    };
    arch.stride = 2;
    for variational in [false, true] {
        arch.vae.variational = variational;
        let mut cfg = aekit::ModelConfig::new(arch.clone());
        // Two channels of 9 steps: odd lengths exercise the `same` padding's extra end step.
        cfg.resolve(&[2, 9], false).unwrap();
        let checked = check_gradients(&cfg, 4, |name, layer, grads| match layer {
            Layer::Matrix(p) if !name.ends_with(".bias") || name.starts_with("decoder.2") => {
                Some(values_of(grads.get::<2>(p.id).unwrap()))
            }
            _ => None,
        });
        let expected = if variational { 7 } else { 6 };
        assert_eq!(checked, expected, "every layer's weight was checked");
    }
}

#[test]
fn conv1d_trains_alike_on_aekits_kernels_and_burns() {
    let dir = common::tmp();
    let data = spiked_series(dir.path());
    let source = format!("csv:{}", data.display());
    let mut recon = Vec::new();
    for (kernels, run) in [("own", "a"), ("burn", "b")] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aekit"));
        if kernels == "burn" {
            cmd.env("AEKIT_CONV", "burn");
        }
        let out = cmd
            .args([
                "train",
                "--data",
                &source,
                "--time-column",
                "t",
                "--window",
                "33",
                "--stride",
                "5",
                "--model",
                "conv1d",
                "--filters",
                "8,4",
                "--epochs",
                "2",
                "--quiet",
                "--no-report",
                "--out",
                run,
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let npy = dir.path().join(format!("{run}.npy"));
        ok(
            &["reconstruct", run, "--out", npy.to_str().unwrap()],
            dir.path(),
        );
        recon.push(aekit::data::npy::read_array(&npy).unwrap().values);
    }
    assert_eq!(recon[0].len(), recon[1].len());
    let worst = recon[0]
        .iter()
        .zip(&recon[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // Two implementations of the same convolutions (im2col + gemm, and burn's direct loops)
    // agree to rounding after training on both: forward and backward passes alike.
    assert!(worst < 1e-3, "reconstructions differ by {worst}");
}

#[test]
fn recurrent_gradients_match_finite_differences() {
    use aekit::model::layers::Layer;
    use aekit::model::variants::{gru::GruConfig, lstm::LstmConfig};
    let mut arch = GruConfig {
        units: 3,
        latent: 2,
        ..Default::default()
    };
    for lstm in [false, true] {
        for variational in [false, true] {
            arch.vae.variational = variational;
            let mut cfg = if lstm {
                aekit::ModelConfig::new(LstmConfig {
                    recurrent: arch.clone(),
                })
            } else {
                aekit::ModelConfig::new(arch.clone())
            };
            cfg.resolve(&[2, 5], false).unwrap();
            // burn keeps a linear weight as [in, out]; the exported tensor is [out, in].
            let checked = check_gradients(&cfg, 3, |_, layer, grads| match layer {
                Layer::Linear(l) => {
                    Some(values_of(grads.get::<2>(l.weight.id).unwrap().transpose()))
                }
                _ => None,
            });
            // Both cells, the code and the output, and a variational model's log-variance.
            assert_eq!(checked, if variational { 8 } else { 7 }, "lstm {lstm}");
        }
    }
}

#[test]
fn a_series_run_serves_point_scores_as_the_command_line_gives_them() {
    use aekit::serve::ServeOptions;
    use common::serving::{TestServer, agent, post, post_json};
    let dir = common::tmp();
    let data = spiked_series(dir.path());
    let source = format!("csv:{}", data.display());
    train_spiked(
        dir.path(),
        &source,
        "run",
        &["--window", "32", "--stride", "2", "--epochs", "5"],
    );
    // Training stored the point detector: the CLI's default threshold is that one.
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/anomaly-points.json")).unwrap())
            .unwrap();
    assert_eq!(stored["reduce"], "mean");
    let out = dir.path().join("points.csv");
    let printed = ok(
        &["score", "run", "--out", out.to_str().unwrap()],
        dir.path(),
    );
    let threshold = stored["threshold"].as_f64().unwrap();
    assert!(
        printed.contains(&format!("threshold {threshold:.6}")),
        "{printed}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let cli: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let values: Vec<Vec<f32>> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| vec![l.split(',').nth(1).unwrap().parse().unwrap()])
        .collect();

    let server = TestServer::start(&[dir.path().join("run")], ServeOptions::default());
    let a = agent();
    let answer = post_json(
        &a,
        &server.url("/v1/runs/run/score-points"),
        &serde_json::json!({ "x": values }),
    );
    let json = answer.ok_json();
    let served: Vec<f64> = json["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        served, cli,
        "the server's point scores are the CLI's, bit for bit"
    );
    assert_eq!(json["threshold"].as_f64(), Some(threshold));
    assert_eq!(json["anomalous"][1500], true);
    assert_eq!(json["reconstruction"].as_array().unwrap().len(), 2000);

    // A series of the wrong width, one shorter than a window, and a run without windows are
    // refused with JSON errors.
    for (body, expected) in [
        (
            serde_json::json!({ "x": [[1.0, 2.0], [3.0, 4.0]] }),
            "1 values",
        ),
        (
            serde_json::json!({ "x": [[1.0], [2.0]] }),
            "fewer than --window 32",
        ),
    ] {
        let answer = post_json(&a, &server.url("/v1/runs/run/score-points"), &body);
        assert_eq!(answer.status, 400);
        let message = answer.json()["error"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{message}");
    }
    let answer = post(
        &a,
        &server.url("/v1/runs/run/score-points"),
        "image/png",
        b"x",
    );
    assert_eq!(answer.status, 400);
}

#[test]
fn variational_sequence_models_train_on_the_negative_elbo() {
    let dir = common::tmp();
    let data = spiked_series(dir.path());
    let source = format!("csv:{}", data.display());
    for (model, run) in [
        ("conv1d", "vae-conv1d"),
        ("gru", "vae-gru"),
        ("lstm", "vae-lstm"),
    ] {
        train_spiked(
            dir.path(),
            &source,
            run,
            &[
                "--window",
                "32",
                "--model",
                model,
                "--variational",
                "--epochs",
                "12",
            ],
        );
        // The objective is a negative ELBO: the validation loss is the reconstruction term
        // plus a KL term above zero.
        let metrics = std::fs::read_to_string(dir.path().join(run).join("metrics.jsonl")).unwrap();
        let last: serde_json::Value =
            serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        let kl = last["val_loss"].as_f64().unwrap() - last["val_recon"].as_f64().unwrap();
        assert!(kl > 1e-4, "{model}: KL {kl} in {last}");
        // The points still find the spike.
        let printed = ok(&["score", run], dir.path());
        assert!(printed.contains("1 of 1 series"), "{model}: {printed}");
    }
}
