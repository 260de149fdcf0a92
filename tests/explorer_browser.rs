//! The explorer in headless Chromium, driven through WebDriver (Debian's `chromium` and
//! `chromium-driver`): moving over the map shows the API's decode of the point under the
//! pointer, dragging a slider changes the image, the blend's ends are the two reconstructions,
//! a chosen PNG gets its score, and the run selector switches runs. Screenshots go to
//! `target/explorer-screenshots/`, or to `docs/` with `AEKIT_SCREENSHOTS=docs`.
//!
//! `AEKIT_EXPLORER_RUNS=runs/vae2d` serves those run directories first (the README's
//! screenshots show a 2-D VAE on MNIST); the checks then run on the first of them.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use aekit::serve::ServeOptions;
use common::serving::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_driver() -> (Driver, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), format!("http://127.0.0.1:{port}"))
}

/// chromedriver and a headless Chromium session on it (the driver ends when dropped).
async fn browser() -> (Driver, Client) {
    let (driver, webdriver) = start_driver();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1250", "--hide-scrollbars"],
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a WebDriver session");
    (driver, c)
}

/// Runs `script` until it returns something other than null (the page works asynchronously).
async fn wait_for(c: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = c.execute(script, vec![]).await.expect("the script runs");
        if !v.is_null() {
            return v;
        }
        if Instant::now() > deadline {
            let status = c
                .execute(
                    "return document.getElementById('status').textContent",
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            panic!("waited a minute for {what}; the page says {status}");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The grey levels of a canvas (its red channel), read in the page.
fn canvas_levels(id: &str) -> String {
    format!(
        "const c = document.getElementById('{id}');
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         return Array.from(d.filter((_, i) => i % 4 === 0));"
    )
}

fn levels_of(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// The page's mapping from raw values to grey levels, computed the same way in f64.
fn expected_levels(x: &[f64], range: [f64; 2]) -> Vec<i64> {
    let [lo, hi] = range;
    x.iter()
        .map(|v| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
            (t.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as i64
        })
        .collect()
}

fn first_row(v: &Value, field: &str) -> Vec<f64> {
    v[field][0]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn max_difference(a: &[i64], b: &[i64]) -> i64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .max()
        .unwrap_or(0)
}

async fn screenshot(c: &Client, name: &str) {
    let dir = match std::env::var("AEKIT_SCREENSHOTS").as_deref() {
        Ok("docs") => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs"),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/explorer-screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(name), png).unwrap();
}

fn extra_runs() -> Vec<PathBuf> {
    std::env::var("AEKIT_EXPLORER_RUNS")
        .map(|s| {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether Chromium and its driver are installed; says the test is skipped where they are not.
fn browser_present() -> bool {
    let present = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    if !present {
        eprintln!(
            "SKIP: {CHROMIUM} and {CHROMEDRIVER} are needed (Debian: apt-get install chromium chromium-driver)"
        );
    }
    present
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_what_the_api_computes() {
    if !browser_present() {
        return;
    }
    let dir = common::tmp();
    let mut dirs = extra_runs();
    dirs.push(train_shapes_run(dir.path(), "vae"));
    dirs.push(train_shapes_run(dir.path(), "cvae"));
    dirs.push(train_shapes_run(dir.path(), "dense"));
    let server = TestServer::start(&dirs, ServeOptions::default());
    let a = agent();
    let runs = get(&a, &server.url("/v1/runs")).json();
    let first = runs["runs"][0].clone();
    let last = runs["runs"].as_array().unwrap().last().unwrap().clone();
    let name = first["name"].as_str().unwrap().to_string();
    let range: [f64; 2] = serde_json::from_value(first["value_range"].clone()).unwrap();
    let api = |op: &str, body: Value| {
        post_json(&a, &server.url(&format!("/v1/runs/{name}/{op}")), &body).json()
    };

    let (_driver, c) = browser().await;
    c.goto(&server.url("/")).await.unwrap();
    wait_for(
        &c,
        "the first run to load",
        "return (window.aekit && window.aekit.ready) || null",
    )
    .await;

    // 1. The image follows the pointer over the map, and is the API's decode of that point.
    let map = c.find(Locator::Id("map")).await.unwrap();
    let mut shown_points = Vec::new();
    for (dx, dy) in [(60.0, -40.0), (-90.0, 70.0)] {
        c.perform_actions(
            MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
                element: map.clone(),
                duration: None,
                x: dx,
                y: dy,
            }),
        )
        .await
        .unwrap();
        let shown = wait_for(
            &c,
            "a decode of the point under the pointer",
            &format!(
                "const s = window.aekit.shown;
                 if (!s.point || !s.source.startsWith('map')) return null;
                 if (window.aekit.lastPoint && s.point[0] === window.aekit.lastPoint[0]) return null;
                 window.aekit.lastPoint = s.point;
                 return {{ point: s.point, levels: (() => {{ {} }})() }};",
                canvas_levels("decoded")
            ),
        )
        .await;
        let point = shown["point"].clone();
        let decoded = api("decode", json!({ "map": [point] }));
        assert_eq!(
            levels_of(&shown["levels"]),
            expected_levels(&first_row(&decoded, "x"), range),
            "the image shown for map point {point} is the API's decode"
        );
        shown_points.push(point);
    }
    assert_ne!(
        shown_points[0], shown_points[1],
        "the decoded point follows the pointer"
    );
    screenshot(&c, "explorer-map.png").await;

    // 2. Dragging a slider (range ±10) changes the image to the decode of the slider's code.
    c.find(Locator::Id("range-10"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.perform_actions(
        MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
            duration: None,
            x: 5.0,
            y: 5.0,
        }),
    )
    .await
    .unwrap();
    let before = wait_for(
        &c,
        "the view to settle",
        &format!(
            "const s = window.aekit.shown; if (s.source.startsWith('map')) return null; {}",
            canvas_levels("decoded")
        ),
    )
    .await;
    let slider = c.find(Locator::Id("slider-0")).await.unwrap();
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: slider,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: 40.0,
            y: 0.0,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: 40.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(drag).await.unwrap();
    let after = wait_for(
        &c,
        "the slider's decode",
        &format!(
            "const s = window.aekit.shown;
         if (!s.source.includes('z1 +')) return null;
         const want = Number(document.getElementById('slider-0').value);
         if (Math.abs(s.code[0] - window.aekit.state.base[0] - want / 100 * 10) > 1e-4) return null;
         return {{ code: s.code, levels: (() => {{ {} }})() }};",
            canvas_levels("decoded")
        ),
    )
    .await;
    assert_ne!(
        levels_of(&before),
        levels_of(&after["levels"]),
        "dragging z1 changes the image"
    );
    let decoded = api("decode", json!({ "codes": [after["code"].clone()] }));
    assert_eq!(
        levels_of(&after["levels"]),
        expected_levels(&first_row(&decoded, "x"), range)
    );
    screenshot(&c, "explorer-sliders.png").await;

    // 3. The blend's ends are the reconstructions of A and B.
    let t = c.find(Locator::Id("blend-t")).await.unwrap();
    for (key, index, sample) in [("\u{e011}", 0, 0), ("\u{e010}", 20, 1)] {
        t.send_keys(key).await.unwrap();
        let shown = wait_for(
            &c,
            "the blend",
            &format!(
                "const b = window.aekit.blend; if (!b || b.index !== {index}) return null; {}",
                canvas_levels("blend-latent")
            ),
        )
        .await;
        let x = get(
            &a,
            &server.url(&format!("/v1/runs/{name}/samples/{sample}")),
        )
        .json();
        let recon = api("reconstruct", json!({ "x": x["x"] }));
        // The blend encodes A and B together, the reconstruction one sample alone: the codes
        // may differ in the last bits (see the batcher's notes), so a grey level may differ by
        // one where a value sits on a rounding boundary.
        let d = max_difference(
            &levels_of(&shown),
            &expected_levels(&first_row(&recon, "x"), range),
        );
        assert!(
            d <= 1,
            "blend end t={} differs from the reconstruction of sample {sample} by {d} levels",
            index as f64 / 20.0
        );
    }
    t.send_keys("\u{e012}\u{e012}\u{e012}\u{e012}\u{e012}\u{e012}\u{e012}\u{e012}")
        .await
        .unwrap(); // halfway back

    // 4. A PNG given to the page gets its score, the API's score of the same file.
    let sample = get(&a, &server.url(&format!("/v1/runs/{name}/samples/5"))).json();
    let image = &first["image"];
    let (w, h) = (
        image["width"].as_u64().unwrap() as u32,
        image["height"].as_u64().unwrap() as u32,
    );
    let bytes: Vec<u8> = first_row(&sample, "x")
        .iter()
        .map(|v| (expected_levels(&[*v], range)[0]) as u8)
        .collect();
    let png_path = dir.path().join("mine.png");
    if image["channels"] == 1 {
        image::GrayImage::from_raw(w, h, bytes)
            .unwrap()
            .save(&png_path)
            .unwrap();
    } else {
        let plane = (w * h) as usize;
        let rgb: Vec<u8> = (0..3 * plane)
            .map(|k| bytes[(k % 3) * plane + k / 3])
            .collect();
        image::RgbImage::from_raw(w, h, rgb)
            .unwrap()
            .save(&png_path)
            .unwrap();
    }
    c.find(Locator::Id("file-input"))
        .await
        .unwrap()
        .send_keys(png_path.to_str().unwrap())
        .await
        .unwrap();
    let own = wait_for(&c, "the score of the PNG", "return (window.aekit.own && document.getElementById('score-text').textContent) ? window.aekit.own : null").await;
    let png = std::fs::read(&png_path).unwrap();
    let scored = post(
        &a,
        &server.url(&format!("/v1/runs/{name}/score")),
        "image/png",
        &png,
    )
    .json();
    assert_eq!(own["score"].as_f64(), scored["scores"][0].as_f64());
    let text = c
        .execute(
            "return document.getElementById('score-text').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(text.as_str().unwrap().contains("threshold"), "{text}");
    screenshot(&c, "explorer-own-input.png").await;

    // 5. The selector switches runs.
    let last_name = last["name"].as_str().unwrap();
    c.find(Locator::Id("run-select"))
        .await
        .unwrap()
        .select_by_value(last_name)
        .await
        .unwrap();
    wait_for(
        &c,
        "the other run",
        &format!("return window.aekit.ready === '{last_name}' || null"),
    )
    .await;
    let axes = c
        .execute(
            "return document.getElementById('map-axes').textContent",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        axes.as_str().unwrap().contains("principal components"),
        "an 8-D code is shown by PCA: {axes}"
    );
    let picker_hidden = "return document.getElementById('class-box').hidden";
    assert_eq!(c.execute(picker_hidden, vec![]).await.unwrap(), json!(true));

    // 6. A conditional run has a class picker: picking a class shows the same code decoded
    // as that class, as the API decodes it.
    let cvae = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "cvae")
        .unwrap()
        .clone();
    let cvae_name = cvae["name"].as_str().unwrap();
    let cvae_range: [f64; 2] = serde_json::from_value(cvae["value_range"].clone()).unwrap();
    c.find(Locator::Id("run-select"))
        .await
        .unwrap()
        .select_by_value(cvae_name)
        .await
        .unwrap();
    wait_for(
        &c,
        "the conditional run",
        &format!("return window.aekit.ready === '{cvae_name}' || null"),
    )
    .await;
    assert_eq!(
        c.execute(picker_hidden, vec![]).await.unwrap(),
        json!(false)
    );
    c.find(Locator::Id("class-select"))
        .await
        .unwrap()
        .select_by_value("1")
        .await
        .unwrap();
    let shown = wait_for(
        &c,
        "the code decoded as class 1",
        &format!(
            "const s = window.aekit.shown;
             if (window.aekit.cls !== 1 || !s.source.endsWith('class 1')) return null;
             return {{ code: s.code, levels: (() => {{ {} }})() }};",
            canvas_levels("decoded")
        ),
    )
    .await;
    let decoded = post_json(
        &a,
        &server.url(&format!("/v1/runs/{cvae_name}/decode")),
        &json!({ "codes": [shown["code"].clone()], "class": 1 }),
    )
    .json();
    assert_eq!(
        levels_of(&shown["levels"]),
        expected_levels(&first_row(&decoded, "x"), cvae_range),
        "the image shown is the API's decode of the code as class 1"
    );
    screenshot(&c, "explorer-class.png").await;
    c.close().await.unwrap();
}

/// A time series run: the explorer draws its windows as lines over time, through the points
/// the API decodes, where an image run shows an image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_draws_a_series_run_as_lines() {
    if !browser_present() {
        return;
    }
    let dir = common::tmp();
    let mut text = String::from("value\n");
    for i in 0..600 {
        text.push_str(&format!("{}\n", (i as f64 / 5.0).sin()));
    }
    let data = dir.path().join("sine.csv");
    std::fs::write(&data, text).unwrap();
    let source = format!("csv:{}", data.display());
    common::aekit_stdout(
        &[
            "train",
            "--data",
            &source,
            "--window",
            "40",
            "--stride",
            "4",
            "--hidden",
            "32",
            "--latent",
            "2",
            "--epochs",
            "5",
            "--quiet",
            "--no-report",
            "--out",
            "run",
        ],
        dir.path(),
    );
    let server = TestServer::start(&[dir.path().join("run")], ServeOptions::default());
    let a = agent();
    let runs = get(&a, &server.url("/v1/runs")).json();
    assert_eq!(
        runs["runs"][0]["series"],
        json!({"channels": 1, "window": 40})
    );
    let range: [f64; 2] = serde_json::from_value(runs["runs"][0]["value_range"].clone()).unwrap();

    let (_driver, c) = browser().await;
    c.goto(&server.url("/")).await.unwrap();
    wait_for(
        &c,
        "the run to load",
        "return (window.aekit && window.aekit.ready) || null",
    )
    .await;
    // The decoded window as shown, and the canvas it was drawn on (its red channel).
    let shown = wait_for(
        &c,
        "a decoded window",
        &format!(
            "const s = window.aekit.shown;
             if (!s.code) return null;
             return {{ code: s.code, levels: (() => {{ {} }})(), width: document.getElementById('decoded').width }};",
            canvas_levels("decoded")
        ),
    )
    .await;
    assert_eq!(shown["width"], 240, "a line chart, not a 40 x 1 image");
    let decoded = post_json(
        &a,
        &server.url("/v1/runs/run/decode"),
        &json!({ "codes": [shown["code"].clone()] }),
    )
    .json();
    let x = first_row(&decoded, "x");
    assert_eq!(x.len(), 40);
    let red = levels_of(&shown["levels"]);
    // Every step's point (as the page places it) is drawn: a pixel within one of it is not
    // white. The same window moved by a fifth of the value range misses most of the line.
    let on_line = |values: &[f64]| {
        expected_levels(values, range)
            .iter()
            .enumerate()
            .filter(|&(t, level)| {
                let px = (t as f64 * 239.0 / 39.0).round() as i64;
                let py = (111.0 - *level as f64 / 255.0 * 110.0).round() as i64;
                (-1..=1).any(|dy| {
                    (-1..=1).any(|dx| {
                        let (x, y) = ((px + dx).clamp(0, 239), (py + dy).clamp(0, 111));
                        red[(y * 240 + x) as usize] < 200
                    })
                })
            })
            .count()
    };
    let drawn = on_line(&x);
    assert!(
        drawn >= 39,
        "only {drawn} of the 40 decoded points lie on the line drawn"
    );
    let moved: Vec<f64> = x.iter().map(|v| v + 0.2 * (range[1] - range[0])).collect();
    let by_chance = on_line(&moved);
    assert!(
        by_chance < 20,
        "{by_chance} points of another line lie on it too"
    );
    screenshot(&c, "explorer-series.png").await;
}

/// A typed table run: the explorer shows the selected row as a table — each column's value, its
/// reconstruction (a category as its string) and its share of the score, shaded by that share —
/// the same as the API's explanation of the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_a_typed_table_row_column_by_column() {
    if !browser_present() {
        return;
    }
    let dir = common::tmp();
    let mut text = String::from("size,colour,member\n");
    for i in 0..120 {
        let colour = ["red", "green", "blue"][i % 3];
        text.push_str(&format!(
            "{},{colour},{}\n",
            (i % 3) as f64 + 0.1 * (i % 7) as f64,
            i % 2 == 0
        ));
    }
    let data = dir.path().join("t.csv");
    std::fs::write(&data, text).unwrap();
    let source = format!("csv:{}", data.display());
    common::aekit_stdout(
        &[
            "train",
            "--data",
            &source,
            "--hidden",
            "16",
            "--latent",
            "2",
            "--epochs",
            "30",
            "--quiet",
            "--no-report",
            "--out",
            "run",
        ],
        dir.path(),
    );
    let server = TestServer::start(&[dir.path().join("run")], ServeOptions::default());
    let a = agent();
    let runs = get(&a, &server.url("/v1/runs")).json();
    assert_eq!(
        runs["runs"][0]["table"]["columns"][1],
        json!({"name": "colour", "kind": "categorical", "start": 1, "levels": ["blue", "green", "red", "(other)"]})
    );
    let sample = get(&a, &server.url("/v1/runs/run/samples/0")).json();
    let want = &sample["explain"];

    let (_driver, c) = browser().await;
    c.goto(&server.url("/")).await.unwrap();
    wait_for(
        &c,
        "the run to load",
        "return (window.aekit && window.aekit.ready) || null",
    )
    .await;
    let shown = wait_for(
        &c,
        "the selected row's table",
        "const t = window.aekit.table; if (!t) return null;
         const rows = Array.from(document.querySelectorAll('#selected-table tr')).slice(1);
         return { table: t, cells: rows.map((r) => Array.from(r.cells).map((c) => c.textContent)),
                  shades: rows.map((r) => getComputedStyle(r).backgroundColor),
                  pairHidden: document.getElementById('selected-pair').hidden };",
    )
    .await;
    assert_eq!(shown["pairHidden"], true, "no pictures for a table");
    let cells = shown["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 3, "one row per column");
    for (k, column) in want["columns"].as_array().unwrap().iter().enumerate() {
        assert_eq!(cells[k][0], column["column"]);
        assert_eq!(
            cells[k][2], column["reconstructed"],
            "the reconstruction as the API gives it"
        );
    }
    assert_eq!(cells[1][1], "red", "row 0's colour, as a string");
    assert!(["red", "green", "blue"].contains(&cells[1][2].as_str().unwrap()));
    // The column with the largest share is shaded the most.
    let shares: Vec<f64> = want["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .collect();
    let top = (0..3)
        .max_by(|&i, &j| shares[i].total_cmp(&shares[j]))
        .unwrap();
    let alpha = |s: &Value| -> f64 {
        let s = s.as_str().unwrap();
        s.trim_end_matches(')')
            .rsplit(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap_or(1.0)
    };
    let shades: Vec<f64> = shown["shades"]
        .as_array()
        .unwrap()
        .iter()
        .map(alpha)
        .collect();
    assert!(
        (shades[top] - 0.6).abs() < 0.01,
        "{shades:?} for shares {shares:?}"
    );
    // The decoded point under the pointer is shown as the table's columns: the category the
    // API's decoded features make most likely, as its level's name.
    let decoded = wait_for(&c, "a decoded row", "const s = window.aekit.shown; const d = window.aekit.decodedRow; if (!s || !s.x || !d) return null; return { x: s.x, row: d };").await;
    let colour = &runs["runs"][0]["table"]["columns"][1];
    let start = colour["start"].as_u64().unwrap() as usize;
    let levels = colour["levels"].as_array().unwrap();
    let x: Vec<f64> = decoded["x"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let best = (0..levels.len())
        .max_by(|&i, &j| x[start + i].total_cmp(&x[start + j]))
        .unwrap();
    assert_eq!(decoded["row"]["colour"], levels[best], "{decoded}");
    assert!(["true", "false"].contains(&decoded["row"]["member"].as_str().unwrap()));

    // Your own row: the selected row as JSON, changed to a colour the model has not seen next
    // to that size, scored and explained as the API does.
    let prefilled = wait_for(
        &c,
        "the row's JSON",
        "const v = document.getElementById('row-json').value; return v || null;",
    )
    .await;
    let mut row: Value = serde_json::from_str(prefilled.as_str().unwrap()).unwrap();
    assert_eq!(row["colour"], "red", "{row}");
    row["colour"] = json!("blue");
    c.execute(
        "document.getElementById('row-json').value = arguments[0]; document.getElementById('row-score').click(); return null;",
        vec![json!(row.to_string())],
    )
    .await
    .unwrap();
    let own = wait_for(&c, "the own row's score", "const o = window.aekit.ownRow; if (!o) return null; return { o, cells: Array.from(document.querySelectorAll('#own-table tr')).slice(1).map((r) => r.cells[1].textContent) };").await;
    let api = post_json(
        &a,
        &server.url("/v1/runs/run/score"),
        &json!({"rows": [row], "explain": 0}),
    )
    .json();
    assert_eq!(
        own["o"]["score"], api["scores"][0],
        "the page's score is the API's"
    );
    assert_eq!(own["cells"][1], "blue", "{own}");
    c.close().await.unwrap();
}
