//! Batch jobs over a fleet, as processes: `vigil batch --submit` puts two recordings cut
//! into 4 s segments on the job queue of a NATS server of the test's own; two `vigil jobs
//! work` batch workers take the tasks and `vigil serve --nats` records what they find.
//! Mid-job one worker is killed −9, then everything: the other worker, the server, NATS.
//! A fresh worker and the same submission again finish the job, with exactly the cases a
//! plain batch run finds, none twice. An operator makes a job in the web API of recordings
//! the server's library lists, naming nothing else.

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

#[test]
fn an_operator_makes_a_job_of_the_library_s_recordings_through_the_api_and_a_worker_finishes_it() {
    let library = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(library.path().join("junction/2025-03-01")).unwrap();
    std::fs::copy(
        common::fixture("redlight_a.mp4"),
        library.path().join("junction/2025-03-01/0800.mp4"),
    )
    .unwrap();
    std::fs::write(library.path().join("junction/readme.txt"), "not a video").unwrap();
    std::fs::write(
        library.path().join("junction/broken.mp4"),
        b"not an mp4 at all",
    )
    .unwrap();
    let nats = NatsServer::start();
    let url = nats.url();
    let service_dir = tempfile::tempdir().unwrap();
    let service = service_dir.path();
    let camera = common::camera_path();
    // The fleet's camera, known by another id than its config's: cases carry the fleet's.
    ok(vigil(
        service,
        &[
            "fleet",
            "--nats",
            &url,
            "add-camera",
            "--id",
            "junction-7",
            "--camera-config",
            camera.to_str().unwrap(),
            "--url",
            "rtsp://127.0.0.1:9/none",
        ],
    ));
    let library_dir = library.path().to_str().unwrap();
    let server = common::start_server(service, &["--nats", &url, "--recordings", library_dir]);
    let operator = common::user_with_token(service, "op1", "operator");
    let officer = common::user_with_token(service, "off1", "officer");
    let http = reqwest::blocking::Client::new();
    let post = |token: &str, body: Value| {
        let r = http
            .post(format!("{}/api/jobs", server.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };

    let listed: Value = http
        .get(format!("{}/api/recordings", server.base))
        .bearer_auth(&operator)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["junction/2025-03-01/0800.mp4", "junction/broken.mp4"],
        "{listed}"
    );
    let as_officer = http
        .get(format!("{}/api/recordings", server.base))
        .bearer_auth(&officer)
        .send()
        .unwrap();
    assert_eq!(as_officer.status().as_u16(), 403);

    let job = |recording: &str, camera: &str| serde_json::json!({"camera_id": camera, "recordings": [recording], "start": START});
    // Only the listing's names; no path a client makes up, inside the library or out.
    let fixture = common::fixture("redlight_a.mp4").display().to_string();
    for bad in [
        fixture.as_str(),
        "../../etc/passwd",
        "junction/2025-03-01/../2025-03-01/0800.mp4",
        "junction/readme.txt",
    ] {
        let (status, body) = post(&operator, job(bad, "junction-7"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body.to_string().contains("not in the recordings library"),
            "{bad}: {body}"
        );
    }
    let (status, body) = post(&operator, job("junction/2025-03-01/0800.mp4", "nobody"));
    assert_eq!(status, 404, "{body}");
    let (status, _) = post(&officer, job("junction/2025-03-01/0800.mp4", "junction-7"));
    assert_eq!(status, 403);
    // Without a start, each recording's own creation time is needed: a file that is not
    // a video has none, and a job of it alone is refused, naming it.
    let (status, body) = post(
        &operator,
        serde_json::json!({"camera_id": "junction-7", "recordings": ["junction/broken.mp4"]}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("junction/broken.mp4")
            && body.to_string().contains("nothing to do"),
        "{body}"
    );

    let (status, body) = post(&operator, job("junction/2025-03-01/0800.mp4", "junction-7"));
    assert_eq!(status, 201, "{body}");
    let id = body["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["job"]["tasks"], 1, "{body}");
    // Asked again, it is the same job.
    let (_, again) = post(&operator, job("junction/2025-03-01/0800.mp4", "junction-7"));
    assert_eq!(again["job"]["id"], id.as_str(), "{again}");

    let worker_dir = tempfile::tempdir().unwrap();
    common::trust_worker_key(service, worker_dir.path());
    let (worker, _) = batch_worker(worker_dir.path(), &url, "bw-lib");
    let progress = || -> Value {
        let all: Value = http
            .get(format!("{}/api/jobs", server.base))
            .bearer_auth(&officer)
            .send()
            .unwrap()
            .json()
            .unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|p| p["job"]["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    until(Duration::from_secs(180), "the job done", || {
        progress()["left"] == 0
    });
    let done = progress();
    assert_eq!(done["done"][0]["error"], Value::Null, "{done}");
    let violations = done["violations"].as_u64().unwrap();
    assert!(violations >= 1, "the red-light run found: {done}");
    until(Duration::from_secs(30), "the job's cases recorded", || {
        cases(service).len() as u64 >= violations
    });
    let found = cases(service);
    assert!(
        found.iter().all(|(camera, ..)| camera == "\"junction-7\""),
        "cases under the fleet's camera id: {found:?}"
    );
    let audit = ok(vigil(service, &["audit"]));
    assert!(
        audit
            .lines()
            .any(|l| l.contains("job_submit") && l.contains("op1") && l.contains(&id)),
        "{audit}"
    );
    common::stop(worker);
    drop(server);
}
