//! `mpirun -np 2 aekit train …` (the `mpi` feature): two processes train as one process whose
//! batches are split in two, bit for bit; a killed rank stops the job, the run keeps its last
//! checkpoint and resumes to the bytes of an uninterrupted run; ranks started with different
//! settings refuse to start. Skips, saying so, where `mpirun` is absent.
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The settings of every run here: batches of 100 (two shares of 50) on the shapes.
const TRAIN: &[&str] = &[
    "train",
    "--no-report",
    "--shapes-train",
    "2000",
    "--batch-size",
    "100",
];

fn aekit() -> &'static str {
    env!("CARGO_BIN_EXE_aekit")
}

/// `mpirun` with what it needs here (running as root in CI's containers, more ranks than
/// cores), or `None` with a message where Open MPI is not installed.
fn mpirun() -> Option<Command> {
    let found = Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIP: mpirun not found; install Open MPI (Debian: openmpi-bin libopenmpi-dev) to run the MPI tests"
        );
        return None;
    }
    let mut cmd = Command::new("mpirun");
    cmd.arg("--oversubscribe")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    Some(cmd)
}

/// `mpirun -np 2 aekit --threads 1 train …`.
fn two_ranks(mut mpirun: Command, args: &[&str], out: &Path) -> Command {
    mpirun
        .args(["-np", "2", aekit(), "--threads", "1"])
        .args(TRAIN)
        .args(args)
        .arg("--out")
        .arg(out);
    mpirun
}

fn one_process(args: &[&str], out: &Path) -> Output {
    let output = Command::new(aekit())
        .args(["--threads", "2"])
        .args(TRAIN)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Waits for `child`, failing the test if it has not ended after `limit`: a guard against a
/// hang, not a measure of speed.
fn wait_or_fail(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the job still runs after {limit:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn two_ranks_under_mpirun_train_bit_for_bit_as_one_process_with_two_threads() {
    let Some(mpirun) = mpirun() else { return };
    let tmp = common::tmp();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    one_process(&["--epochs", "3"], &one);
    let out = two_ranks(mpirun, &["--epochs", "3"], &two)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    common::assert_same_run(&one, &two);
    // Rank 0 alone reports.
    assert_eq!(stdout.matches("run written to").count(), 1, "{stdout}");
    assert!(stderr.contains("2 ranks of 1 thread"), "{stderr}");
}

/// Every tensor of a run's best weights, as f32 values in name order.
fn weights(run: &Path) -> Vec<f32> {
    common::weights_bits(run)
        .into_iter()
        .flat_map(|(_, bits)| bits.into_iter().map(f32::from_bits))
        .collect()
}

#[test]
fn four_ranks_sum_in_rank_order_bit_for_bit_and_by_allreduce_to_rounding() {
    let Some(_) = mpirun() else { return };
    let tmp = common::tmp();
    // Four shares of 50 rows.
    let args = [
        "train",
        "--no-report",
        "--shapes-train",
        "2000",
        "--batch-size",
        "200",
        "--epochs",
        "3",
    ];
    let one = tmp.path().join("one");
    let output = Command::new(aekit())
        .args(["--threads", "4"])
        .args(args)
        .arg("--out")
        .arg(&one)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    for sum in ["ordered", "allreduce"] {
        let out = tmp.path().join(sum);
        let mut cmd = mpirun().unwrap();
        cmd.args(["-np", "4", aekit(), "--threads", "1"])
            .args(args)
            .args(["--rank-sum", sum, "--out"])
            .arg(&out);
        let run = cmd.output().unwrap();
        assert!(run.status.success(), "{}", text(&run.stderr));
        if sum == "ordered" {
            common::assert_same_run(&one, &out);
        } else {
            // The MPI library adds the four shares in an order of its own: equal to rounding.
            let (a, b) = (weights(&one), weights(&out));
            assert_eq!(a.len(), b.len());
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 1e-6, "weights differ by up to {worst}");
        }
    }
}

/// The rank-1 process of the job writing `out`, found by its command line and environment.
fn rank_one_pid(out: &Path) -> Option<u32> {
    let want = out.to_string_lossy().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        let is_rank_one = text(&environ)
            .split('\0')
            .any(|v| v == "OMPI_COMM_WORLD_RANK=1");
        let is_aekit = text(&cmdline).split('\0').next() == Some(aekit());
        (is_aekit && is_rank_one && text(&cmdline).contains(&want)).then_some(pid)
    })
}

/// Trains 40 epochs on two ranks, sends `signal` to rank 1 once the first epoch's checkpoint
/// is written, then resumes: the job must end (not hang), the run resume to the bytes of one
/// process's uninterrupted run. Returns the stopped job's output.
fn stop_rank_one_then_resume(signal: &str) -> Output {
    let launcher = mpirun().expect("mpirun");
    let tmp = common::tmp();
    let (whole, stopped) = (tmp.path().join("whole"), tmp.path().join("stopped"));
    // A checkpoint at every epoch's end, so that one is written before the signal.
    let epochs = ["--epochs", "40", "--checkpoint-seconds", "0"];
    one_process(&epochs, &whole);

    let child = two_ranks(launcher, &epochs, &stopped)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let pid = loop {
        let epochs_done =
            std::fs::read_to_string(stopped.join("metrics.jsonl")).map_or(0, |m| m.lines().count());
        if epochs_done >= 1
            && let Some(pid) = rank_one_pid(&stopped)
        {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the job never finished an epoch"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_or_fail(child, Duration::from_secs(60));
    assert!(!out.status.success(), "{}", text(&out.stderr));
    let state: serde_json::Value =
        serde_json::from_slice(&common::read(&stopped.join("checkpoint/state.json"))).unwrap();
    let at = state["global_step"].as_u64().unwrap();
    assert!((18..40 * 18).contains(&at), "checkpoint at step {at}");

    let resumed = mpirun()
        .unwrap()
        .args([
            "-np",
            "2",
            aekit(),
            "--threads",
            "1",
            "train",
            "--no-report",
            "--resume",
        ])
        .arg(&stopped)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    common::assert_same_run(&whole, &stopped);
    out
}

#[test]
fn a_killed_rank_stops_the_job_and_the_run_resumes_from_its_last_checkpoint_to_the_same_bytes() {
    if mpirun().is_none() {
        return;
    }
    // As an out-of-memory killer or a lost machine would.
    let out = stop_rank_one_then_resume("-9");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("rank 1"),
        "the launcher names the rank: {stderr}"
    );
}

#[test]
fn a_signal_to_one_rank_stops_every_rank_at_one_step_checkpointed_there() {
    if mpirun().is_none() {
        return;
    }
    let out = stop_rank_one_then_resume("-INT");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(
        stderr
            .matches("interrupted: checkpoint saved at epoch")
            .count(),
        1,
        "rank 0 alone says it: {stderr}"
    );
}

#[test]
fn ranks_started_with_different_settings_refuse_to_start_and_name_the_setting() {
    let Some(mut mpirun) = mpirun() else { return };
    let tmp = common::tmp();
    let out = tmp.path().join("run");
    for (k, lr) in ["0.001", "0.002"].iter().enumerate() {
        if k > 0 {
            mpirun.arg(":");
        }
        mpirun
            .args(["-np", "1", aekit(), "--threads", "1"])
            .args(TRAIN)
            .args(["--epochs", "1", "--lr", lr, "--out"])
            .arg(&out);
    }
    let output = wait_or_fail(
        mpirun
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(120),
    );
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("rank 1 was started with a different") && stderr.contains("train.lr"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn each_rank_says_an_error_of_its_own_on_one_line_and_rank_1_names_itself() {
    let Some(mpirun) = mpirun() else { return };
    let tmp = common::tmp();
    let missing = tmp.path().join("missing.csv");
    let out = two_ranks(
        mpirun,
        &["--data", &format!("csv:{}", missing.display())],
        &tmp.path().join("run"),
    )
    .output()
    .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(ours.len(), 2, "{stderr}");
    assert!(ours.iter().all(|l| l.contains("missing.csv")), "{stderr}");
    assert_eq!(
        ours.iter()
            .filter(|l| l.starts_with("error: rank 1: "))
            .count(),
        1,
        "{stderr}"
    );
    assert!(!tmp.path().join("run").exists(), "nothing written");
}
