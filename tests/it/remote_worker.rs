//! Workers that record through `vigil serve`'s API instead of a database (the HTTP sink):
//! a batch run whose cases and sightings (with their pictures) reach the service, and a
//! live worker whose service is down, which keeps every case and records each, once,
//! when the service is back.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, ok, stop, vigil};

fn batch_args(service: &str, token: &str) -> Vec<String> {
    let start = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    let mut args: Vec<String> = vec![
        "batch".into(),
        "--camera".into(),
        common::camera_path().display().to_string(),
        "--start".into(),
        start,
        "--service-url".into(),
        service.into(),
        "--service-token".into(),
        token.into(),
    ];
    for scene in common::SCENES {
        args.push(
            common::fixture(&format!("{scene}.mp4"))
                .display()
                .to_string(),
        );
    }
    args
}

fn cases(data: &Path) -> Vec<Value> {
    ok(vigil(data, &["cases", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a case as JSON"))
        .collect()
}

#[test]
fn a_batch_run_elsewhere_records_its_cases_and_sightings_with_pictures_through_the_service() {
    let service_data = tempfile::tempdir().unwrap();
    let worker_data = tempfile::tempdir().unwrap();
    let (service, worker) = (service_data.path(), worker_data.path());
    let token = common::user_with_token(service, "worker", "operator");
    let server = common::start_server(service, &[]);
    let args = batch_args(&server.base, &token);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Until an administrator trusts the worker's key, the service takes none of its
    // packages, and says why.
    let untrusted = vigil(worker, &args);
    let stderr = String::from_utf8_lossy(&untrusted.stderr).into_owned();
    assert!(!untrusted.status.success());
    assert!(stderr.contains("not a trusted key"), "{stderr}");
    assert!(cases(service).is_empty());

    common::trust_worker_key(service, worker);
    let run = vigil(worker, &args);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("1 new case(s), 0 already recorded").count(),
        2,
        "{stderr}"
    );
    assert!(
        !worker.join("vigil.db").exists(),
        "the worker kept a database of its own"
    );

    let recorded = cases(service);
    let plates: Vec<&str> = recorded
        .iter()
        .filter_map(|c| c["plate"].as_str())
        .collect();
    assert_eq!(plates, vec!["98A-123.45", "99B1-123.45"], "{recorded:?}");
    // Each case's evidence is the package the worker wrote and signed, sent to the
    // service and filed in its own store, where it verifies against its case.
    for c in &recorded {
        let dir = Path::new(c["evidence_dir"].as_str().unwrap());
        assert!(dir.starts_with(service), "{}", dir.display());
        let event = c["event_id"].as_str().unwrap();
        let sent = worker.join("evidence").join(event);
        assert_eq!(
            std::fs::read(dir.join("clip.mp4")).unwrap(),
            std::fs::read(sent.join("clip.mp4")).unwrap()
        );
        let verified = vigil(service, &["verify", dir.to_str().unwrap()]);
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stdout)
        );
    }
    assert!(
        std::fs::read_dir(service.join("evidence/.incoming"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "uploads left behind after their events were taken"
    );

    // The plates read are the service's sightings; their pictures were sent as bytes and
    // kept in the service's own data folder.
    let found = ok(vigil(service, &["search", "98A-l23.4S", "--json"]));
    let first: Value = serde_json::from_str(found.lines().next().expect("a sighting")).unwrap();
    assert_eq!(first["sighting"]["plate"], "98A-123.45");
    assert_eq!(first["sighting"]["has_thumbnail"], true);
    let pictures: Vec<_> = std::fs::read_dir(service.join("sightings/bn-demo-01"))
        .expect("pictures under the service's data folder")
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!pictures.is_empty());
    for p in &pictures {
        image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }

    // The same run again records nothing twice.
    let again = vigil(worker, &args);
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("0 new case(s), 1 already recorded").count(),
        2,
        "{stderr}"
    );
    assert_eq!(cases(service).len(), 2);
}

/// `vigil run` of the junction camera recording through `service`, its stderr lines.
fn worker(
    data: &Path,
    deployment: &Path,
    service: &str,
    token: &str,
) -> (Child, mpsc::Receiver<String>) {
    let to = common::Records {
        global: Vec::new(),
        run: vec![
            "--service-url".into(),
            service.into(),
            "--service-token".into(),
            token.into(),
        ],
    };
    common::start_worker(data, deployment, &to)
}

/// The event ids of the cases records the worker left in its spool.
fn spooled_cases(data: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data.join("unrecorded")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-case.json"))
        .map(|p| {
            let record: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            record["case"]["event_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_keeps_every_case_while_the_service_is_down_and_records_each_once_back() {
    let service_data = tempfile::tempdir().unwrap();
    let worker_data = tempfile::tempdir().unwrap();
    let (service, worker_dir) = (service_data.path(), worker_data.path());
    let token = common::user_with_token(service, "worker", "operator");
    let officer = common::user_with_token(service, "officer1", "officer");
    let (_camera, deployment) = common::junction_camera(worker_dir, 2, 2);
    common::trust_worker_key(service, worker_dir);
    // Where the service will answer; nothing listens there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");

    // The service is down: the worker packages its violations and cannot hand them over.
    let (child, lines) = worker(worker_dir, &deployment, &url, &token);
    let until = Instant::now() + Duration::from_secs(90);
    let mut log: Vec<String> = Vec::new();
    let next = |log: &mut Vec<String>| {
        let line = lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("not seen within 90 s:\n{}", log.join("\n")));
        log.push(line.clone());
        line
    };
    while !next(&mut log).contains("waiting for the end of its clip") {}
    while !next(&mut log).contains("could not take a record") {}
    stop(child);
    let spooled = spooled_cases(worker_dir);
    assert!(
        !spooled.is_empty(),
        "nothing kept in the spool:\n{}",
        log.join("\n")
    );

    // Back up: the next start records what the spool holds, first.
    let server = common::start_server_on(service, &format!("127.0.0.1:{port}"), &[]);
    let (child, _lines) = worker(worker_dir, &deployment, &url, &token);
    let until = Instant::now() + Duration::from_secs(60);
    while !spooled_cases(worker_dir).is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop(child);
    assert!(
        spooled_cases(worker_dir).is_empty(),
        "the spool was not recorded"
    );

    // Every event kept is on exactly one case.
    let http = reqwest::Client::new();
    let list: Vec<Value> = http
        .get(format!("{}/api/cases", server.base))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut on_cases: BTreeMap<String, usize> = BTreeMap::new();
    for c in &list {
        let detail: Value = http
            .get(format!("{}/api/cases/{}", server.base, c["id"]))
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in detail["events"].as_array().unwrap() {
            *on_cases
                .entry(e["event_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for id in &spooled {
        assert_eq!(on_cases.get(id), Some(&1), "event {id}: {on_cases:?}");
    }
}
