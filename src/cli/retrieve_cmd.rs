//! `aekit retrieve` (nearest documents of a query) and `aekit eval --retrieval` (precision at
//! recall levels for the run's codes and for LSA).

use std::path::PathBuf;

use clap::Args;

use aekit::data::Split;
use aekit::error::Result;
use aekit::eval::retrieval::{RECALL_LEVELS, RetrievalCurve, evaluate_run, nearest_documents};
use aekit::viz::charts::retrieval_chart;

use super::args::RunData;

#[derive(Args, Debug)]
pub struct RetrieveArgs {
    #[command(flatten)]
    input: RunData,
    /// Index of the query document in the split.
    #[arg(long)]
    query: usize,
    /// Documents to return.
    #[arg(short, long, default_value_t = 10)]
    k: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn retrieve(args: RetrieveArgs, device: &burn::tensor::Device) -> Result<()> {
    let (run, data) = args.input.open(device)?;
    let codes = run.model.encode_given(&data.x, data.labels.as_deref())?;
    let hits = nearest_documents(&codes, args.query, args.k)?;
    let class = |i: usize| match (&data.labels, &data.class_names) {
        (Some(l), Some(n)) => n.get(l[i] as usize).cloned().unwrap_or_default(),
        (Some(l), None) => l[i].to_string(),
        _ => String::new(),
    };
    if args.json {
        let rows: Vec<serde_json::Value> = hits
            .iter()
            .map(|(i, s)| serde_json::json!({"index": i, "similarity": s, "class": class(*i)}))
            .collect();
        let v =
            serde_json::json!({"query": args.query, "class": class(args.query), "nearest": rows});
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    println!(
        "query {} ({}) of {}: nearest {} by cosine similarity of codes",
        args.query,
        class(args.query),
        data.origin,
        hits.len()
    );
    for (i, s) in &hits {
        println!("  {i:>6}  {s:.4}  {}", class(*i));
    }
    Ok(())
}

/// Settings of `aekit eval --retrieval`.
#[derive(Args, Debug)]
pub struct RetrievalFlags {
    /// Measure document retrieval: precision at recall levels for the codes and for LSA.
    #[arg(long)]
    pub retrieval: bool,
    /// LSA sizes to compare with (default: the run's code size and 50).
    #[arg(long, value_delimiter = ',')]
    pub lsa_dims: Option<Vec<usize>>,
    /// Precision-recall chart (PNG; default RUN_DIR/retrieval.png).
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// Precision at recall levels on the evaluated split for the codes and LSA (fitted on the
/// training split), with the chart written beside the run or to `--chart`.
pub fn evaluate(
    flags: &RetrievalFlags,
    input: &RunData,
    run: &aekit::Run,
    data: &aekit::Dataset,
) -> Result<Vec<RetrievalCurve>> {
    let train = run.load_data(Some(&input.data_config(run)?), Split::Train)?;
    let curves = evaluate_run(run, data, &train, flags.lsa_dims.as_deref())?;
    let path = flags
        .chart
        .clone()
        .unwrap_or_else(|| run.dir.path.join("retrieval.png"));
    aekit::viz::grid::save_png(&path, &retrieval_chart(&curves)?)?;
    Ok(curves)
}

/// Prints the curves as a table, recall levels down the side.
pub fn print_table(curves: &[RetrievalCurve]) {
    print!("  {:>8}", "recall");
    for c in curves {
        print!("  {:>16}", format!("{} {}-d", c.method, c.dims));
    }
    println!();
    for (l, r) in RECALL_LEVELS.iter().enumerate() {
        print!("  {:>7.1}%", 100.0 * r);
        for c in curves {
            print!("  {:>16.4}", c.precision[l]);
        }
        println!();
    }
}
