//! Typed tables: every column kind read from the schema and decoded back, the per-column
//! losses against their closed forms, a masked value's zero gradient, training that learns a
//! category, explanations, and the bad inputs (an unseen category, a column whose type changes,
//! an all-missing column).

mod common;

use std::path::Path;

use aekit::data::DataConfig;
use aekit::data::columns::{self, ColumnKind, OTHER, TableColumns};
use aekit::data::table::TableFormat;
use aekit::model::columns::{OutputColumns, OutputGroup, OutputKind};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use burn::tensor::{Device, Tensor, TensorData};

use common::run_aekit as aekit;

use common::aekit_stdout as ok;

/// `aekit train` on the table `data` with its label column and `extra` flags, into `out`.
fn train_args<'a>(data: &'a str, extra: &[&'a str], out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["train", "--data", data, "--label-column", "label"];
    args.extend_from_slice(extra);
    args.extend(["--out", out]);
    args
}

fn refused(args: &[&str], cwd: &Path) -> String {
    let out = aekit(args, cwd);
    assert_eq!(
        out.status.code(),
        Some(2),
        "aekit {args:?} should fail with 2"
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// 200 rows: `x` a number (every 10th missing), `sign` "neg"/"pos" as x's sign (a category the
/// model can learn from x), `flag` a boolean equal to x > 1, `color` with a level seen twice
/// ("purple"), `id` a distinct string per row, `day` a date (carried), `label` 0.
fn mixed_table(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("x,sign,flag,color,id,day,label\n");
    let mut state = 7u64;
    for i in 0..200 {
        let x = (common::uniform(&mut state) - 0.5) * 6.0;
        let color = match i {
            5 | 6 => "purple",
            _ if i % 3 == 0 => "red",
            _ if i % 3 == 1 => "green",
            _ => "blue",
        };
        let shown = if i % 10 == 3 {
            String::new()
        } else {
            format!("{x:.3}")
        };
        text += &format!(
            "{shown},{},{},{color},row{i},2024-01-{:02},0\n",
            if x < 0.0 { "neg" } else { "pos" },
            x > 1.0,
            1 + i % 28
        );
    }
    let path = dir.join("mixed.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn config(path: &Path) -> DataConfig {
    DataConfig {
        label_column: Some("label".into()),
        ..DataConfig::for_source(&format!("csv:{}", path.display()))
    }
}

#[test]
fn every_column_kind_is_read_from_the_schema_and_decoded_back_to_its_type() {
    let dir = common::tmp();
    let path = mixed_table(dir.path());
    let cfg = config(&path);
    let (found, format) = columns::typed_source(&cfg, &cfg.source).unwrap().unwrap();
    assert_eq!(
        (found.as_path(), format),
        (path.as_path(), TableFormat::Csv)
    );
    let table = columns::read(&cfg, &path, format).unwrap();
    let mut notes = Vec::new();
    let fitted = TableColumns::fit(&table, &cfg, &mut notes).unwrap();
    let kinds: Vec<(&str, &ColumnKind)> = fitted
        .columns
        .iter()
        .map(|c| (c.name.as_str(), &c.kind))
        .collect();
    assert_eq!(kinds[0], ("x", &ColumnKind::Numeric));
    assert_eq!(kinds[2], ("flag", &ColumnKind::Boolean));
    let ColumnKind::Categorical { levels, pooled } = &fitted.columns[3].kind else {
        panic!("color is categorical")
    };
    assert_eq!(levels, &["blue", "green", "red", OTHER]);
    assert_eq!(pooled, &["purple"]);
    // An id (a distinct string per row) and a date are carried, not learned.
    assert_eq!(fitted.carried, ["id", "day"]);
    assert!(notes.iter().any(|n| n.contains("'id'")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("pooled")), "{notes:?}");

    let encoded = fitted.encode(&table.batch, &path).unwrap();
    assert!(encoded.unseen.is_empty(), "pooled values are not unseen");
    let x = &encoded.x;
    assert_eq!(x.cols, 1 + 3 + 1 + 4);
    assert!(x.row(3)[0].is_nan(), "a missing number is NaN");
    assert_eq!(&x.row(5)[5..9], &[0.0, 0.0, 0.0, 1.0], "purple is pooled");
    assert_eq!(&x.row(0)[5..9], &[0.0, 0.0, 1.0, 0.0], "red");

    // Decoding the rows gives the table back: strings, booleans, numbers bit for bit, nulls.
    let decoded = fitted.decode(x).unwrap();
    let original = &table.batch;
    for name in ["sign", "color"] {
        let want = arrow::compute::cast(
            original.column_by_name(name).unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let (want, got) = (
            want.as_string::<i32>(),
            decoded.column_by_name(name).unwrap().as_string::<i32>(),
        );
        for r in 0..200 {
            let expected = if name == "color" && (r == 5 || r == 6) {
                OTHER
            } else {
                want.value(r)
            };
            assert_eq!(got.value(r), expected, "{name} row {r}");
        }
    }
    assert_eq!(
        decoded.column_by_name("flag").unwrap().as_boolean(),
        original.column_by_name("flag").unwrap().as_boolean()
    );
    let xs = decoded
        .column_by_name("x")
        .unwrap()
        .as_primitive::<Float64Type>();
    let want_x = original
        .column_by_name("x")
        .unwrap()
        .as_primitive::<Float64Type>();
    for r in 0..200 {
        assert_eq!(xs.is_null(r), want_x.is_null(r), "row {r}");
        if !xs.is_null(r) {
            assert_eq!(xs.value(r), want_x.value(r) as f32 as f64, "row {r}");
        }
    }
}

fn device() -> Device {
    Device::flex()
}

/// A numeric column (output 0), a boolean (1) and a categorical of three levels (2..5).
fn three_kinds() -> OutputColumns {
    let group = |name: &str, kind, start, width, weight| OutputGroup {
        name: name.into(),
        kind,
        start,
        width,
        weight,
    };
    OutputColumns {
        groups: vec![
            group("n", OutputKind::Numeric, 0, 1, 1.0),
            group("b", OutputKind::Boolean, 1, 1, 2.0),
            group("c", OutputKind::Categorical, 2, 3, 0.5),
        ],
    }
}

#[test]
fn each_kind_loss_equals_its_closed_form_and_a_masked_value_has_zero_gradient() {
    let columns = three_kinds();
    let logits = [
        0.3f32, -1.2, 0.5, 2.0, -0.7, /* row 2 */ 1.5, 0.8, -0.3, 0.1, 0.9,
    ];
    let nan = f32::NAN;
    // Row 0 has every value; row 1 misses its number and its category.
    let target = [1.0f32, 1.0, 0.0, 1.0, 0.0, nan, 0.0, nan, nan, nan];
    let dev = device().autodiff();
    let l = Tensor::<2>::from_data(TensorData::new(logits.to_vec(), [2, 5]), &dev).require_grad();
    let t = Tensor::<2>::from_data(TensorData::new(target.to_vec(), [2, 5]), &dev);
    let per_row = columns.per_sample(l.clone(), t);
    let values: Vec<f32> = per_row
        .clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();

    let softplus = |z: f64| (1.0 + z.exp()).ln();
    let ce = |z: &[f32], k: usize| {
        let lse = z.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
        lse - z[k] as f64
    };
    let row0 =
        (0.3f64 - 1.0).powi(2) + 2.0 * (softplus(-1.2) - 1.0 * -1.2) + 0.5 * ce(&logits[2..5], 1);
    let row1 = 2.0 * softplus(0.8);
    assert!(
        (values[0] as f64 - row0).abs() < 1e-5,
        "{} vs {row0}",
        values[0]
    );
    assert!(
        (values[1] as f64 - row1).abs() < 1e-5,
        "{} vs {row1}",
        values[1]
    );

    let grads = per_row.sum().backward();
    let g: Vec<f32> = l
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    for (k, what) in [
        (5, "the missing number"),
        (7, "a missing category's level"),
        (8, "one"),
        (9, "another"),
    ] {
        assert_eq!(g[k], 0.0, "{what}: gradient {}", g[k]);
    }
    assert!(g[0] != 0.0 && g[1] != 0.0 && g[6] != 0.0, "{g:?}");
    // The categorical gradient is weight × (softmax − one-hot).
    let e: Vec<f64> = logits[2..5].iter().map(|&v| (v as f64).exp()).collect();
    let sum: f64 = e.iter().sum();
    for (i, k) in (2..5).enumerate() {
        let want = 0.5 * (e[i] / sum - if i == 1 { 1.0 } else { 0.0 });
        assert!(
            (g[k] as f64 - want).abs() < 1e-5,
            "level {i}: {} vs {want}",
            g[k]
        );
    }

    // The host score splits into the same terms (outputs activated first).
    let mut activated = logits.to_vec();
    columns.activate(&mut activated, 5);
    let shares = columns.column_shares(&activated[..5], &target[..5]);
    assert!(
        (shares.iter().sum::<f64>() - row0).abs() < 1e-4,
        "{shares:?} vs {row0}"
    );
    let shares = columns.column_shares(&activated[5..], &target[5..]);
    assert_eq!(
        (shares[0], shares[2]),
        (0.0, 0.0),
        "missing values score nothing"
    );
}

#[test]
fn a_typed_table_trains_learns_its_category_explains_its_scores_and_decodes_its_rows() {
    let dir = common::tmp();
    let path = mixed_table(dir.path());
    let cwd = dir.path();
    let data = format!("csv:{}", path.display());
    ok(
        &train_args(
            &data,
            &[
                "--hidden",
                "32",
                "--latent",
                "4",
                "--epochs",
                "150",
                "--val-fraction",
                "0",
                "--seed",
                "1",
            ],
            "run",
        ),
        cwd,
    );
    ok(&["reconstruct", "run", "--out", "rows.csv"], cwd);
    let rows = std::fs::read_to_string(cwd.join("rows.csv")).unwrap();
    let mut lines = rows.lines();
    assert_eq!(lines.next().unwrap(), "id,day,x,sign,flag,color");
    let original = std::fs::read_to_string(&path).unwrap();
    let (mut right, mut total) = (0, 0);
    for (got, want) in lines.zip(original.lines().skip(1)) {
        let got: Vec<&str> = got.split(',').collect();
        let want: Vec<&str> = want.split(',').collect();
        assert_eq!(got[0], want[4], "the id is carried");
        if !want[0].is_empty() {
            total += 1;
            right += usize::from(got[3] == want[1]);
        }
    }
    // The sign is x's: a model that reads x gives it back (as a string) for nearly every row.
    assert!(
        right * 100 >= total * 95,
        "sign reconstructed for {right} of {total} rows"
    );

    // The report has each column's quality; missing values are left out of its figures.
    let report = std::fs::read_to_string(cwd.join("run/report.html")).unwrap();
    assert!(
        !report.contains("NaN"),
        "missing values left out of the metrics"
    );
    assert!(
        report.contains("<tr><td>x</td><td>numeric</td><td class=n>20</td>"),
        "x's 20 missing values counted"
    );
    assert!(report.contains("<tr><td>sign</td><td>categorical</td><td class=n>0</td>"));

    let out = ok(
        &["score", "run", "--explain", "2", "--out", "scores.csv"],
        cwd,
    );
    assert!(out.contains("by loss"), "{out}");
    let scores = std::fs::read_to_string(cwd.join("scores.csv")).unwrap();
    let header = scores.lines().next().unwrap();
    assert_eq!(
        header,
        "index,score,anomaly,id,day,column_1,value_1,reconstructed_1,share_1,column_2,value_2,reconstructed_2,share_2"
    );
    let mut top: Option<(f64, String, String)> = None;
    for line in scores.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let score: f64 = f[1].parse().unwrap();
        let (a, b): (f64, f64) = (f[8].parse().unwrap(), f[12].parse().unwrap());
        assert!(a >= b && a + b <= score + 1e-9, "{line}");
        if top.as_ref().is_none_or(|t| score > t.0) {
            top = Some((score, f[0].to_string(), f[5].to_string()));
        }
    }

    // The columns figure names the same highest-scored row and its largest column as the
    // scores do, and the report carries it.
    let (_, row, column) = top.unwrap();
    let out = ok(&["plot", "run", "columns", "--out", "columns.png"], cwd);
    assert!(
        out.contains(&format!("row {row} scores highest"))
            && out.contains(&format!("of it from '{column}'")),
        "row {row}, column {column}: {out}"
    );
    let png = image::open(cwd.join("columns.png")).unwrap();
    assert!(
        png.width() >= 960 && png.height() > 560,
        "{}x{}",
        png.width(),
        png.height()
    );
    assert!(report.contains("<figure id=\"columns\">"));

    // Exported to ONNX: the score graph's loss per column, and what it takes to make its rows
    // (the numbers against aekit's in ONNX Runtime: python/tests/test_onnx.py).
    ok(
        &["export", "run", "--onnx", "m.onnx", "--part", "score"],
        cwd,
    );
    use onnx_protobuf::Message;
    let model =
        onnx_protobuf::ModelProto::parse_from_bytes(&std::fs::read(cwd.join("m.onnx")).unwrap())
            .unwrap();
    let graph = model.graph.as_ref().unwrap();
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["score", "column_scores", "anomaly"]);
    let meta: std::collections::HashMap<_, _> = model
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(meta["aekit.score"], "loss");
    let columns: serde_json::Value = serde_json::from_str(meta["aekit.columns"]).unwrap();
    let named: Vec<(&str, u64)> = columns["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["start"].as_u64().unwrap()))
        .collect();
    assert_eq!(named[0], ("x", 0));
    assert_eq!(
        named.iter().map(|n| n.0).collect::<Vec<_>>(),
        ["x", "sign", "flag", "color"]
    );

    // A file with a colour never seen and a colour pooled in training: read as '(other)', the
    // unseen one reported, nothing refused.
    let other = original.replacen(",red,row0,", ",teal,row0,", 1).replacen(
        ",red,row3,",
        ",purple,row3,",
        1,
    );
    std::fs::write(cwd.join("other.csv"), other).unwrap();
    let out = aekit(
        &[
            "score",
            "run",
            "--data",
            "csv:other.csv",
            "--label-column",
            "label",
        ],
        cwd,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("column 'color': 1 value(s) never seen in training (e.g. 'teal')"),
        "{err}"
    );
}

#[test]
fn bad_typed_tables_are_refused_in_one_line_naming_the_column() {
    let dir = common::tmp();
    let cwd = dir.path();
    let path = mixed_table(cwd);
    let text = std::fs::read_to_string(&path).unwrap();

    // Every value of a column missing.
    let empty: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l},blank\n")
            } else {
                format!("{l},\n")
            }
        })
        .collect();
    std::fs::write(cwd.join("blank.csv"), empty).unwrap();
    let err = refused(&train_args("csv:blank.csv", &["--epochs", "1"], "r1"), cwd);
    assert!(err.contains("column 'blank' has no values"), "{err}");
    assert!(!cwd.join("r1").exists(), "nothing written");

    // A weight for a column that is not a feature, a weight that is not a number.
    let data = format!("csv:{}", path.display());
    let err = refused(
        &train_args(&data, &["--column-weights", "nope=2"], "r2"),
        cwd,
    );
    assert!(err.contains("'nope'"), "{err}");
    let err = refused(
        &train_args(&data, &["--column-weights", "x=much"], "r2"),
        cwd,
    );
    assert!(
        err.contains("--column-weights") && err.contains("much"),
        "{err}"
    );

    // A column whose type changes between the training file and the scored one.
    ok(&train_args(&data, &["--epochs", "2"], "run"), cwd);
    let changed = text.replace(",neg,", ",1,").replace(",pos,", ",2,");
    std::fs::write(cwd.join("changed.csv"), changed).unwrap();
    let err = refused(
        &[
            "score",
            "run",
            "--data",
            "csv:changed.csv",
            "--label-column",
            "label",
        ],
        cwd,
    );
    assert!(
        err.contains("column 'sign' is Float64 here and was Utf8 in training"),
        "{err}"
    );

    // A column the run learned is absent.
    let dropped: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{}\n", f[0], f[2..].join(","))
        })
        .collect();
    std::fs::write(cwd.join("dropped.csv"), dropped).unwrap();
    let err = refused(
        &[
            "score",
            "run",
            "--data",
            "csv:dropped.csv",
            "--label-column",
            "label",
        ],
        cwd,
    );
    assert!(
        err.contains("column 'sign' (categorical in training) is missing"),
        "{err}"
    );

    // A typed table is read whole.
    let err = refused(&train_args(&data, &["--stream"], "r3"), cwd);
    assert!(err.contains("--stream"), "{err}");

    // A run on rows of numbers has no columns to split its scores by: every view that splits
    // them refuses it by name.
    ok(
        &[
            "train", "--data", "shapes", "--hidden", "8", "--latent", "2", "--epochs", "1",
            "--out", "plain",
        ],
        cwd,
    );
    for args in [
        &["plot", "plain", "columns"][..],
        &["score", "plain", "--explain", "2"][..],
    ] {
        let err = refused(args, cwd);
        assert!(
            err.contains("plain") && err.contains("need a run trained on a typed table"),
            "{err}"
        );
    }
}

#[test]
fn the_server_scores_and_explains_json_rows_as_the_cli_does() {
    use aekit::serve::ServeOptions;
    use common::serving::{TestServer, agent, post_json};
    let dir = common::tmp();
    let cwd = dir.path();
    let path = mixed_table(cwd);
    let data = format!("csv:{}", path.display());
    ok(&train_args(&data, &["--epochs", "20"], "run"), cwd);
    ok(
        &["score", "run", "--explain", "1", "--out", "scores.json"],
        cwd,
    );
    let cli: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("scores.json")).unwrap()).unwrap();

    let server = TestServer::start(&[cwd.join("run")], ServeOptions::default());
    let a = agent();
    // The first two rows of the table (row 0 with every value), then one with a missing number,
    // an unseen colour and no flag at all.
    let rows = serde_json::json!([
        {"x": -2.062, "sign": "neg", "flag": false, "color": "red", "id": "row0"},
        {"x": 0.5, "sign": "pos", "flag": false, "color": "teal"},
    ]);
    let answer = post_json(
        &a,
        &server.url("/v1/runs/run/score"),
        &serde_json::json!({"rows": rows, "explain": 1}),
    );
    let json = answer.ok_json();
    let scores = json["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 2);
    assert_eq!(json["score"], "loss");
    assert_eq!(json["unseen"][0]["column"], "color");
    let explained = json["explain"][1]["columns"].as_array().unwrap();
    assert_eq!(explained.len(), 1, "{json}");
    assert!(explained[0]["value"].is_string(), "{json}");
    // Row 0 as the CLI scored it (the table's own first row).
    let first = std::fs::read_to_string(&path).unwrap();
    let x0: f64 = first
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rows = serde_json::json!([{"x": x0, "sign": if x0 < 0.0 {"neg"} else {"pos"}, "flag": x0 > 1.0, "color": "red"}]);
    let answer = post_json(
        &a,
        &server.url("/v1/runs/run/score"),
        &serde_json::json!({"rows": rows}),
    );
    let served = answer.json()["scores"][0].as_f64().unwrap();
    let want = cli["rows"][0]["score"].as_f64().unwrap();
    // The same row, the same model: equal but for the rounding of a batch of one against the
    // CLI's batch of every row.
    assert!(
        (served - want).abs() < 1e-6 * want.abs().max(1.0),
        "served {served}, CLI {want}"
    );

    // A category given as a number where the levels are text: read as its text (here unseen).
    let answer = post_json(
        &a,
        &server.url("/v1/runs/run/score"),
        &serde_json::json!({"rows": [{"x": 0.1, "sign": 7}]}),
    );
    assert_eq!(answer.ok_json()["unseen"][0]["examples"][0], "7");

    for (body, expected) in [
        (
            serde_json::json!({"rows": [{"nope": 1}]}),
            "'nope' is not a column",
        ),
        (
            serde_json::json!({"rows": [{"x": "high"}]}),
            "column 'x' takes a number",
        ),
        (serde_json::json!({"x": [[1.0]]}), "\"rows\""),
        (
            serde_json::json!({"rows": [{"x": 1.0}], "explain": "all"}),
            "\"explain\"",
        ),
    ] {
        let answer = post_json(&a, &server.url("/v1/runs/run/score"), &body);
        assert_eq!(answer.status, 400, "{body}");
        let message = answer.json()["error"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn missing_impute_keeps_the_given_values_and_fills_the_missing_ones() {
    let dir = common::tmp();
    let cwd = dir.path();
    let path = mixed_table(cwd);
    let data = format!("csv:{}", path.display());
    ok(
        &train_args(&data, &["--missing", "impute", "--epochs", "20"], "run"),
        cwd,
    );
    let out = ok(&["reconstruct", "run", "--out", "rows.csv"], cwd);
    // Every tenth x is missing: 20 of 200.
    assert!(
        out.contains("imputed 20 missing value(s) of column 'x'"),
        "{out}"
    );
    let rows = std::fs::read_to_string(cwd.join("rows.csv")).unwrap();
    let original = std::fs::read_to_string(&path).unwrap();
    for (i, (got, want)) in rows
        .lines()
        .skip(1)
        .zip(original.lines().skip(1))
        .enumerate()
    {
        let got: Vec<&str> = got.split(',').collect();
        let want: Vec<&str> = want.split(',').collect();
        let x: f64 = got[2].parse().expect("every x is given or imputed");
        if want[0].is_empty() {
            assert!(x.is_finite(), "row {i}");
        } else {
            assert_eq!(
                x,
                want[0].parse::<f64>().unwrap() as f32 as f64,
                "row {i}: a given value is kept"
            );
            // The given category is kept too (a model's guess would differ on some rows).
            assert_eq!(got[3], want[1], "row {i}");
        }
    }
}

/// A Parquet table partitioned in `key=value` folders, with an Arrow dictionary column, a
/// boolean and numbers with nulls: read as a typed table across its files, the partition column
/// carried when named, and a file whose dictionary column became plain numbers refused.
#[test]
fn a_partitioned_parquet_table_with_a_dictionary_column_is_typed() {
    use arrow::array::{BooleanArray, DictionaryArray, Float64Array, RecordBatch};
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;
    let dir = common::tmp();
    let cwd = dir.path();
    let write = |path: &Path, batch: &RecordBatch| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(path).unwrap(),
            batch.schema(),
            None,
        )
        .unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
    };
    let part = |offset: usize| {
        let n = 60;
        let shade: DictionaryArray<Int32Type> = (0..n)
            .map(|i| ["light", "dark"][(i + offset) % 2])
            .collect();
        let size = Float64Array::from_iter((0..n).map(|i| {
            (i % 9 != 4).then_some(
                if (i + offset).is_multiple_of(2) {
                    1.0
                } else {
                    5.0
                } + 0.01 * i as f64,
            )
        }));
        let big = BooleanArray::from_iter((0..n).map(|i| Some((i + offset) % 2 == 1)));
        RecordBatch::try_from_iter([
            ("shade", Arc::new(shade) as _),
            ("size", Arc::new(size) as _),
            ("big", Arc::new(big) as _),
        ])
        .unwrap()
    };
    write(&cwd.join("t/site=a/0.parquet"), &part(0));
    write(&cwd.join("t/site=b/0.parquet"), &part(1));
    ok(
        &[
            "train",
            "--data",
            "parquet:t",
            "--ignore-columns",
            "site",
            "--epochs",
            "60",
            "--val-fraction",
            "0",
            "--out",
            "run",
        ],
        cwd,
    );
    let pre: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("run/preprocess.json")).unwrap())
            .unwrap();
    let columns = &pre["columns"];
    assert_eq!(columns["carried"], serde_json::json!(["site"]));
    let kinds: Vec<(&str, &str)> = columns["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("shade", "categorical"),
            ("size", "numeric"),
            ("big", "boolean")
        ]
    );
    ok(&["reconstruct", "run", "--out", "rows.csv"], cwd);
    let rows = std::fs::read_to_string(cwd.join("rows.csv")).unwrap();
    assert_eq!(rows.lines().next().unwrap(), "site,shade,size,big");
    assert_eq!(rows.lines().count(), 121);
    // The shade follows the size and the flag: the model gives it back on every row.
    for (i, line) in rows.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let want = if f[3] == "true" { "dark" } else { "light" };
        assert_eq!(f[1], want, "row {i}: {line}");
    }

    // The same table with the shade stored as numbers: refused, naming the column.
    let mut changed = part(0);
    let codes = Float64Array::from_iter_values((0..60).map(|i| (i % 2) as f64));
    changed = RecordBatch::try_from_iter([
        ("shade", Arc::new(codes) as _),
        ("size", changed.column(1).clone()),
        ("big", changed.column(2).clone()),
    ])
    .unwrap();
    write(&cwd.join("u/site=a/0.parquet"), &changed);
    let err = refused(&["score", "run", "--data", "parquet:u"], cwd);
    assert!(err.contains("column 'shade' is Float64 here"), "{err}");
}
