//! Batch jobs over a fleet, as processes: `vigil batch --submit` puts two recordings cut
//! into 4 s segments on the job queue of a NATS server of the test's own; two `vigil jobs
//! work` batch workers take the tasks and `vigil serve --nats` records what they find.
//! Mid-job one worker is killed −9, then everything: the other worker, the server, NATS.
//! A fresh worker and the same submission again finish the job, with exactly the cases a
//! plain batch run finds, none twice.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_testkit::nats::NatsServer;

use crate::common::{self, ok, vigil};

const START: &str = "2025-03-01T08:00:00+07:00";

fn batch_worker(data: &Path, nats: &str, name: &str) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("--data")
        .arg(data)
        .args(["jobs", "--nats", nats, "work", "--worker", name]);
    common::spawn_logged(cmd)
}

/// (camera, violation, plate, moment) of every case.
fn cases(data: &Path) -> Vec<(String, String, String, String)> {
    let mut all: Vec<_> = ok(vigil(data, &["cases", "--json"]))
        .lines()
        .map(|l| {
            let c: Value = serde_json::from_str(l).unwrap();
            (
                c["camera_id"].to_string(),
                c["violation"].to_string(),
                c["plate"].to_string(),
                c["occurred_at"].to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn submit(service: &Path, nats: &str, videos: &[PathBuf], extra: &[&str]) -> std::process::Output {
    let camera = common::camera_path();
    let mut args: Vec<String> = [
        "batch",
        "--submit",
        nats,
        "--camera",
        camera.to_str().unwrap(),
        "--start",
        START,
        "--segment-seconds",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(videos.iter().map(|v| v.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    vigil(service, &args)
}

#[test]
fn a_job_survives_a_killed_worker_and_a_restart_of_everything_and_finds_what_a_plain_run_finds() {
    let videos = vec![
        common::fixture("redlight_a.mp4"),
        common::fixture("redlight_b.mp4"),
    ];
    // What a plain run on this machine finds.
    let plain = tempfile::tempdir().unwrap();
    let camera = common::camera_path();
    let mut args = vec![
        "batch",
        "--camera",
        camera.to_str().unwrap(),
        "--start",
        START,
    ];
    let names: Vec<String> = videos.iter().map(|v| v.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    ok(vigil(plain.path(), &args));
    let expected = cases(plain.path());
    assert_eq!(expected.len(), 2, "{expected:?}");

    let mut nats = NatsServer::start();
    let url = nats.url();
    let service_dir = tempfile::tempdir().unwrap();
    let service = service_dir.path();
    // Each event its own case: a violation recorded twice would show as two.
    let server = common::start_server(service, &["--nats", &url, "--dedup-window", "0"]);

    let submitted = submit(service, &url, &videos, &["--no-wait"]);
    let said = String::from_utf8_lossy(&submitted.stderr).to_string();
    assert!(submitted.status.success(), "{said}");
    let job = said
        .split_whitespace()
        .find(|w| w.starts_with("job-"))
        .map(|w| w.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no job id in: {said}"));
    let status = || {
        String::from_utf8_lossy(&vigil(service, &["jobs", "--nats", &url, "status", &job]).stdout)
            .to_string()
    };
    assert!(status().contains("0 done"), "{}", status());

    let worker_dirs: Vec<tempfile::TempDir> =
        (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &worker_dirs {
        common::trust_worker_key(service, d.path());
    }
    let (mut one, _) = batch_worker(worker_dirs[0].path(), &url, "bw1");
    let (mut two, two_log) = batch_worker(worker_dirs[1].path(), &url, "bw2");
    // Once a task is done, one worker dies mid-way through its next.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = two_log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("bw2 finished no task");
        if line.contains(" frames, ") && line.contains("task") {
            break;
        }
    }
    one.kill().unwrap();
    one.wait().unwrap();
    // Then everything: the other worker, the case service, NATS.
    std::thread::sleep(Duration::from_secs(2));
    two.kill().unwrap();
    two.wait().unwrap();
    drop(server);
    nats.restart();
    let left = status();
    eprintln!("after the kills: {left}");
    assert!(
        !left.contains(" 0 left"),
        "the job was not cut off mid-way: {left}"
    );

    // Everything again: the same submission resumes the job, a fresh worker finishes it.
    let server = common::start_server(service, &["--nats", &url, "--dedup-window", "0"]);
    let (three, _) = batch_worker(worker_dirs[2].path(), &url, "bw3");
    let finished = submit(service, &url, &videos, &[]);
    let said = String::from_utf8_lossy(&finished.stderr).to_string();
    eprintln!("resumed: {said}");
    assert!(finished.status.success(), "{said}");
    assert!(
        said.contains(&format!("job {job} done")),
        "the same job resumed: {said}"
    );
    assert!(said.contains("0 task(s) failed"), "{said}");
    let done = status();
    assert!(done.contains(" 0 left"), "{done}");
    until(Duration::from_secs(30), "the job's cases recorded", || {
        cases(service).len() >= expected.len()
    });
    // Late deliveries of tasks the killed workers held would show up as more cases.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(cases(service), expected, "exactly the plain run's cases");
    common::stop(three);
    drop(server);
}
