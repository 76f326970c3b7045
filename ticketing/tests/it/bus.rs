//! Events and sightings reaching the case service through the fleet's NATS JetStream (a
//! server of the test's own): a worker's sink publishes, the service's consumers record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::prelude::*;
use vigil_core::sighting::SightingUpload;
use vigil_core::{DataDir, EventSink, Recorded};
use vigil_evidence::EvidenceKey;
use vigil_fleet::bus::{EVENTS_STREAM, EVENTS_SUBJECT, REFUSED_STREAM, SIGHTINGS_SUBJECT};
use vigil_fleet::intake::Consumers;
use vigil_fleet::{Bus, BusSink};
use vigil_testkit::nats::NatsServer;
use vigil_testkit::samples::{file_package, sample_sighting};
use vigil_ticketing::EvidenceStore;
use vigil_ticketing::bus_intake::BusIntake;
use vigil_ticketing::fines::FineSchedules;
use vigil_ticketing::intake::Intake;
use vigil_ticketing::sightings::SightingQuery;

async fn stream_messages(bus: &Bus, name: &str) -> u64 {
    let mut stream = bus.js.get_stream(name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_published_while_the_case_service_is_down_become_cases_once_with_their_evidence() {
    let nats = NatsServer::start();
    let bus = Bus::connect(&nats.url(), "test").await.unwrap();

    let worker_dir = tempfile::tempdir().unwrap();
    let worker = DataDir::new(worker_dir.path());
    let key = EvidenceKey::load_or_create(&worker.keys()).unwrap();
    let mut events = Vec::new();
    for n in 1..=3 {
        let mut e = sample_event(n);
        file_package(&worker.evidence(), &mut e, &key);
        events.push(e);
    }
    let ids: Vec<_> = events.iter().map(|e| e.event_id).collect();

    // The worker publishes (from its recorder's thread: the sink blocks).
    let sink = BusSink::new(
        bus.clone(),
        tokio::runtime::Handle::current(),
        worker.evidence(),
    );
    let published = tokio::task::spawn_blocking(move || {
        for e in &events {
            assert_eq!(sink.record_event(e).unwrap(), Recorded::Queued);
            // A journal replay after a crash: its package went once the server took it.
            assert_eq!(sink.record_event(e).unwrap(), Recorded::Queued);
        }
        let mut sighting = sample_sighting(7);
        sighting.thumbnail = None;
        assert!(sink.record_sighting(&sighting).unwrap());
        assert!(sink.record_sighting(&sighting).unwrap());
        sighting
    })
    .await
    .unwrap();
    for id in &ids {
        assert!(
            !worker.evidence().join(id.to_string()).exists(),
            "the worker's copy of a published package is deleted"
        );
    }
    // Sent twice, kept once (the server drops a message id it has).
    assert_eq!(stream_messages(&bus, EVENTS_STREAM).await, 3);
    // Something that is no event, and a sighting with a plate no camera reads.
    bus.js
        .publish(EVENTS_SUBJECT, "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let mut wrong = sample_sighting(8);
    wrong.plate = "<script>".into();
    let wrong = SightingUpload {
        sighting: wrong,
        picture_jpeg_base64: None,
    };
    bus.js
        .publish(
            SIGHTINGS_SUBJECT,
            serde_json::to_vec(&wrong).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    // The case service starts.
    let (_backend, store, _db) = stores::sqlite().await;
    store
        .trust_key(&key.public_hex(), "worker", Utc::now())
        .await
        .unwrap();
    let service_dir = tempfile::tempdir().unwrap();
    let service = DataDir::new(service_dir.path());
    let intake = Intake::new(
        store.clone(),
        FineSchedules::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fines"))
            .unwrap(),
        EvidenceStore::new(&service),
    );
    let consumers = Consumers::start(
        bus.clone(),
        Arc::new(BusIntake {
            intake,
            data: service.clone(),
        }),
    );
    let start = Instant::now();
    loop {
        let cases = store.list().await.unwrap().len();
        let refused = stream_messages(&bus, REFUSED_STREAM).await;
        if cases == 3 && refused == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{cases} cases, {refused} refused"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        assert!(
            service
                .evidence()
                .join(id.to_string())
                .join("manifest.json")
                .is_file(),
            "the package is filed in the case service's store"
        );
    }
    let found = store
        .search_sightings(&SightingQuery {
            plate: published.plate.clone(),
            camera_id: None,
            vehicle_class: None,
            from: None,
            to: None,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the sighting recorded once: {found:?}");
    // Every message was taken off the work queue.
    assert_eq!(stream_messages(&bus, EVENTS_STREAM).await, 0);
    consumers.stop().await;
    // Nothing more came of a second look.
    assert_eq!(store.list().await.unwrap().len(), 3);
}

/// Cameras a test worker was asked to run.
#[derive(Default)]
struct Runs(std::sync::Mutex<Vec<String>>);

impl vigil_fleet::CameraHost for Runs {
    fn start(
        &self,
        camera: &vigil_fleet::FleetCamera,
        _gate: vigil_fleet::Gate,
    ) -> Result<(), String> {
        self.0.lock().unwrap().push(camera.id.clone());
        Ok(())
    }

    fn stop(&self, camera: &str) {
        self.0.lock().unwrap().retain(|c| c != camera);
    }
}

async fn fleet_camera(bus: &Bus, id: &str, paused: bool) {
    let camera = vigil_fleet::FleetCamera {
        id: id.into(),
        spec: serde_json::json!({}),
        pin: None,
        paused,
    };
    bus.cameras
        .put(id, serde_json::to_vec(&camera).unwrap().into())
        .await
        .unwrap();
}

async fn metrics_text(h: &super::http::Harness, role: vigil_ticketing::Role) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/metrics", h.base))
        .bearer_auth(&h.tokens[&role])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The fleet page's data and the Prometheus gauges say what the fleet's NATS JetStream
/// says: two workers, their cameras, a paused one run nowhere; when a worker vanishes it
/// shows silent, and its cameras' moves to the other say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fleet_view_and_metrics_show_workers_cameras_and_why_cameras_moved() {
    use vigil_fleet::{Agent, AgentSettings};
    use vigil_ticketing::Role;

    let nats = NatsServer::start();
    let admin = Bus::connect(&nats.url(), "admin").await.unwrap();
    for id in ["cam-a", "cam-b", "cam-c", "cam-d"] {
        fleet_camera(&admin, id, false).await;
    }
    fleet_camera(&admin, "cam-paused", true).await;
    let (backend, store, _dir) = stores::sqlite().await;
    let fleet = admin.clone();
    let h = super::http::start_configured(backend, store, move |s| s.with_fleet(fleet)).await;

    let start = |name: &'static str| {
        let url = nats.url();
        async move {
            let host = Arc::new(Runs::default());
            let bus = Bus::connect(&url, name).await.unwrap();
            let agent = Agent::start(bus, AgentSettings::new(name, 4), host.clone()).unwrap();
            (agent, host)
        }
    };
    let (one, one_runs) = start("worker-1").await;
    let (two, two_runs) = start("worker-2").await;

    let view = |h: &super::http::Harness| {
        let h = (h.base.clone(), h.tokens[&Role::Operator].clone());
        async move {
            let resp = reqwest::Client::new()
                .get(format!("{}/api/fleet", h.0))
                .bearer_auth(&h.1)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let state_of = |v: &serde_json::Value, id: &str| {
        v["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| {
                (
                    c["state"].as_str().unwrap().to_string(),
                    c["worker"].clone(),
                )
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let settled = loop {
        let v = view(&h).await;
        let running = ["cam-a", "cam-b", "cam-c", "cam-d"]
            .iter()
            .all(|id| state_of(&v, id).0 == "running");
        let both_work = v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["cameras"].as_array().unwrap().len() == 2);
        if running && both_work {
            break v;
        }
        assert!(Instant::now() < deadline, "the fleet never settled: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        state_of(&settled, "cam-paused"),
        ("paused".into(), serde_json::Value::Null)
    );
    let workers = settled["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{settled}");
    assert!(
        workers
            .iter()
            .all(|w| w["alive"] == true && w["capacity"] == 4)
    );
    // Where the view says a camera runs is where it runs.
    for id in one_runs.0.lock().unwrap().iter() {
        assert_eq!(state_of(&settled, id).1, "worker-1");
    }
    assert!(
        settled["moves"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["reason"] == "unassigned" && m["to"].is_string()),
        "{settled}"
    );

    let (status, text) = metrics_text(&h, Role::Operator).await;
    assert_eq!(status, 200, "{text}");
    for line in [
        "vigil_fleet_workers{state=\"alive\"} 2",
        "vigil_fleet_cameras{state=\"running\"} 4",
        "vigil_fleet_cameras{state=\"paused\"} 1",
        "vigil_fleet_worker_cameras{worker=\"worker-1\"} 2",
        "vigil_fleet_queue_messages{stream=\"VIGIL_EVENTS\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert_eq!(metrics_text(&h, Role::Investigator).await.0, 403);

    // One worker vanishes: the view shows it silent, then its cameras on the other.
    let lost = one_runs.0.lock().unwrap().clone();
    one.vanish();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let v = view(&h).await;
        let silent = v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "worker-1" && w["alive"] == false);
        let moved = lost
            .iter()
            .all(|id| state_of(&v, id) == ("running".into(), "worker-2".into()));
        if silent && moved {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the vanished worker's cameras never moved: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in &lost {
        assert!(
            after["moves"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["camera"] == id.as_str()
                    && m["reason"] == "worker_silent"
                    && m["from"] == "worker-1"
                    && m["to"] == "worker-2"),
            "no move of {id} saying why: {after}"
        );
    }
    assert_eq!(two_runs.0.lock().unwrap().len(), 4);
    let (_, text) = metrics_text(&h, Role::Admin).await;
    assert!(
        text.lines()
            .any(|l| l == "vigil_fleet_workers{state=\"silent\"} 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "vigil_fleet_worker_alive{worker=\"worker-1\"} 0"),
        "{text}"
    );
    // A worker asked to stop gives its cameras back and leaves; it must not hang (it once
    // did here, on a loaded 2-core machine: this says so instead of waiting for ever).
    assert!(
        tokio::time::timeout(Duration::from_secs(60), two.stop())
            .await
            .is_ok(),
        "worker-2 did not stop within 60 s"
    );
}

/// A server without a fleet says so, and its metrics still carry the cases.
#[tokio::test]
async fn without_nats_the_fleet_view_says_there_is_no_fleet_and_metrics_carry_the_cases() {
    use vigil_ticketing::Role;
    let (backend, store, _dir) = stores::sqlite().await;
    let h = super::http::start(backend, store).await;
    let (status, body) = h.send_event(&h.event(1)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = h
        .call(
            Some(Role::Operator),
            reqwest::Method::GET,
            "/api/fleet",
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("--nats"), "{body}");
    let (status, text) = metrics_text(&h, Role::Operator).await;
    assert_eq!(status, 200);
    assert!(
        text.lines()
            .any(|l| l.starts_with("vigil_cases{state=") && l.ends_with(" 1")),
        "{text}"
    );
    assert!(!text.contains("vigil_fleet_"), "{text}");
}

/// A replica that did not take an event from the fleet serves its evidence from the
/// fleet's object store, checked before it is filed: a file changed in the store is not
/// served and nothing of that package is filed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_serves_evidence_another_took_from_the_fleets_store_only_as_signed() {
    use vigil_ticketing::Role;
    let nats = NatsServer::start();
    let bus = Bus::connect(&nats.url(), "test").await.unwrap();
    let (backend, store, _db) = stores::sqlite().await;
    let fleet = bus.clone();
    let h =
        super::http::start_configured(backend, store.clone(), move |s| s.with_fleet(fleet)).await;

    // A worker's two events, signed by a key the service trusts, published.
    let worker = tempfile::tempdir().unwrap();
    let worker = DataDir::new(worker.path());
    let mut events = Vec::new();
    for n in [41, 42] {
        let mut e = sample_event(n);
        file_package(&worker.evidence(), &mut e, &h.key);
        events.push(e);
    }
    let originals: Vec<Vec<u8>> = events
        .iter()
        .map(|e| {
            std::fs::read(
                worker
                    .evidence()
                    .join(e.event_id.to_string())
                    .join("2_on.jpg"),
            )
            .unwrap()
        })
        .collect();
    let sink = BusSink::new(
        bus.clone(),
        tokio::runtime::Handle::current(),
        worker.evidence(),
    );
    let sent = events.clone();
    tokio::task::spawn_blocking(move || {
        for e in &sent {
            sink.record_event(e).unwrap();
        }
    })
    .await
    .unwrap();

    // Another replica, with a data folder of its own, takes them.
    let other = tempfile::tempdir().unwrap();
    let other = DataDir::new(other.path());
    let consumers = Consumers::start(
        bus.clone(),
        Arc::new(BusIntake {
            intake: Intake::new(
                store.clone(),
                FineSchedules::load_dir(
                    &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fines"),
                )
                .unwrap(),
                EvidenceStore::new(&other),
            ),
            data: other.clone(),
        }),
    );
    let start = Instant::now();
    while store.list().await.unwrap().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the events never became cases"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumers.stop().await;
    for e in &events {
        assert!(!h.data.evidence().join(e.event_id.to_string()).exists());
    }
    // The second event's picture changed in the store after it was recorded.
    let forged = vigil_fleet::sink::evidence_object(events[1].event_id, "2_on.jpg");
    bus.evidence
        .put(
            forged.as_str(),
            &mut &b"\xFF\xD8\xFF\xE0 not the picture"[..],
        )
        .await
        .unwrap();

    let get = |id: uuid::Uuid| {
        let (base, token) = (h.base.clone(), h.tokens[&Role::Officer].clone());
        async move {
            let resp = reqwest::Client::new()
                .get(format!("{base}/api/evidence/{id}/2_on.jpg"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        }
    };
    let (status, bytes) = get(events[0].event_id).await;
    assert_eq!(status, 200);
    assert!(
        bytes == originals[0],
        "the served picture is the signed one"
    );
    assert!(
        h.data
            .package(events[0].event_id)
            .join("manifest.json")
            .is_file(),
        "filed here now"
    );
    let (status, bytes) = get(events[1].event_id).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&bytes));
    assert!(
        !h.data.package(events[1].event_id).exists(),
        "a package that fails its check is not filed"
    );
}

/// The fleet page's job list says what the job queue holds: tasks done of all, frames,
/// and a failed task by its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_jobs_are_listed_with_their_progress_and_failures() {
    use vigil_fleet::jobs::{Job, Jobs, Outcome, Task};
    use vigil_ticketing::Role;
    let nats = NatsServer::start();
    let bus = Bus::connect(&nats.url(), "test").await.unwrap();
    let (backend, store, _db) = stores::sqlite().await;
    let fleet = bus.clone();
    let h = super::http::start_configured(backend, store, move |s| s.with_fleet(fleet)).await;
    let jobs = Jobs::open(&bus).await.unwrap();
    let job = Job {
        id: "job-test".into(),
        camera_id: "cam-1".into(),
        camera_config: "id = \"cam-1\"".into(),
        recordings: vec!["/archive/a.mp4".into(), "/archive/b.mp4".into()],
        tasks: 3,
        motion_gating: false,
        submitted_at: Utc::now(),
    };
    let tasks: Vec<Task> = (0..3)
        .map(|n| Task {
            job: job.id.clone(),
            task: n,
            recording: job.recordings[(n as usize).min(1)].clone(),
            started_at: Utc::now(),
            segment: None,
        })
        .collect();
    jobs.submit(&job, &tasks).await.unwrap();
    for (frames, error) in [
        (120, None),
        (0, Some("/archive/b.mp4: cannot decode it".to_string())),
    ] {
        let claimed = jobs
            .next(Duration::from_secs(2))
            .await
            .unwrap()
            .expect("a task");
        let task = claimed.task.task;
        claimed
            .done(Outcome {
                task,
                worker: "bw1".into(),
                frames,
                violations: 1,
                sightings: 0,
                error,
                seconds: 1.0,
                finished_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    let resp = reqwest::Client::new()
        .get(format!("{}/api/jobs", h.base))
        .bearer_auth(&h.tokens[&Role::Operator])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let all: serde_json::Value = resp.json().await.unwrap();
    let p = &all[0];
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(p["job"]["id"], "job-test");
    assert_eq!(
        (p["done"].as_array().unwrap().len(), p["left"].as_u64()),
        (2, Some(1)),
        "{p}"
    );
    assert_eq!(p["frames"], 120);
    assert!(
        p["done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["error"] == "/archive/b.mp4: cannot decode it"),
        "{p}"
    );
    let resp = reqwest::Client::new()
        .get(format!("{}/api/jobs", h.base))
        .bearer_auth(&h.tokens[&Role::Investigator])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
