//! Workers sharing cameras through leases on a real NATS server of the test's own, with a
//! host that only records what it was asked to run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use vigil_fleet::agent::drain_key;
use vigil_fleet::{Admit, Agent, AgentSettings, Bus, CameraHost, FleetCamera, Gate};
use vigil_testkit::nats::NatsServer;

#[derive(Default)]
struct Recording {
    running: Mutex<HashMap<String, Gate>>,
    stopped: Mutex<Vec<String>>,
}

impl CameraHost for Recording {
    fn start(&self, camera: &FleetCamera, gate: Gate) -> Result<(), String> {
        if camera.spec.get("broken").is_some() {
            return Err("its spec is broken".into());
        }
        self.running.lock().unwrap().insert(camera.id.clone(), gate);
        Ok(())
    }

    fn stop(&self, camera: &str) {
        self.running.lock().unwrap().remove(camera);
        self.stopped.lock().unwrap().push(camera.to_string());
    }
}

impl Recording {
    fn cameras(&self) -> Vec<String> {
        let mut c: Vec<String> = self.running.lock().unwrap().keys().cloned().collect();
        c.sort();
        c
    }
}

async fn add_camera(bus: &Bus, id: &str, pin: Option<&str>) {
    let camera = FleetCamera {
        id: id.into(),
        spec: serde_json::json!({ "url": format!("rtsp://127.0.0.1/{id}") }),
        pin: pin.map(str::to_string),
        paused: false,
    };
    bus.cameras
        .put(id, serde_json::to_vec(&camera).unwrap().into())
        .await
        .unwrap();
}

struct Worker {
    name: String,
    host: Arc<Recording>,
    agent: Agent,
}

async fn worker(url: &str, name: &str, capacity: u32) -> Worker {
    let bus = Bus::connect(url, name).await.unwrap();
    let host = Arc::new(Recording::default());
    let agent = Agent::start(bus, AgentSettings::new(name, capacity), host.clone()).unwrap();
    Worker {
        name: name.into(),
        host,
        agent,
    }
}

/// Wait until `done` holds, at most `limit`; the time it took.
async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// Each camera runs on exactly one of `workers`, all of `cameras` run.
fn exactly_once(workers: &[&Worker], cameras: usize) -> bool {
    let mut all: Vec<String> = workers.iter().flat_map(|w| w.host.cameras()).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    n == cameras && all.len() == cameras
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_share_six_cameras_and_a_silent_workers_cameras_move_within_fifteen_seconds()
{
    let nats = NatsServer::start();
    let url = nats.url();
    let admin = Bus::connect(&url, "admin").await.unwrap();
    for i in 0..6 {
        add_camera(&admin, &format!("cam-{i}"), None).await;
    }
    let a = worker(&url, "a", 8).await;
    let b = worker(&url, "b", 8).await;
    let c = worker(&url, "c", 8).await;
    until(
        Duration::from_secs(10),
        "all six cameras running once",
        || exactly_once(&[&a, &b, &c], 6),
    )
    .await;
    until(Duration::from_secs(10), "two cameras each", || {
        [&a, &b, &c].iter().all(|w| w.host.cameras().len() == 2)
    })
    .await;

    // Killed: nothing given back, no more heartbeats.
    let lost = a.host.cameras();
    let gates: Vec<Gate> = a.host.running.lock().unwrap().values().cloned().collect();
    let killed_at = Instant::now();
    a.agent.vanish();
    let moved = until(
        Duration::from_secs(15),
        "the silent worker's cameras on the others",
        || {
            let running: Vec<String> = [&b, &c].iter().flat_map(|w| w.host.cameras()).collect();
            lost.iter().all(|cam| running.contains(cam))
        },
    )
    .await;
    assert!(exactly_once(&[&b, &c], 6));
    eprintln!("failover after {moved:?}");
    // Its gates stopped letting records out before the others took the cameras.
    assert!(
        killed_at.elapsed() >= Duration::from_secs(4),
        "taken over too soon: {moved:?}"
    );
    for gate in gates {
        assert_eq!(gate.admit(Utc::now()), Admit::Hold);
    }

    // A worker that comes back takes its share.
    let d = worker(&url, "d", 8).await;
    until(
        Duration::from_secs(15),
        "the new worker running its share",
        || d.host.cameras().len() == 2 && exactly_once(&[&b, &c, &d], 6),
    )
    .await;
    // The cameras that moved off b and c were stopped there.
    let stopped: usize = [&b, &c]
        .iter()
        .map(|w| w.host.stopped.lock().unwrap().len())
        .sum();
    assert_eq!(
        stopped, 2,
        "b and c gave back one camera each, and stopped it"
    );

    b.agent.stop().await;
    until(
        Duration::from_secs(10),
        "b's cameras on c and d once b left",
        || exactly_once(&[&c, &d], 6),
    )
    .await;
    c.agent.stop().await;
    d.agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cameras_are_added_removed_pinned_and_drained_at_run_time() {
    let nats = NatsServer::start();
    let url = nats.url();
    let admin = Bus::connect(&url, "admin").await.unwrap();
    for i in 0..4 {
        add_camera(&admin, &format!("cam-{i}"), None).await;
    }
    let a = worker(&url, "a", 8).await;
    let b = worker(&url, "b", 8).await;
    until(Duration::from_secs(10), "four cameras, two each", || {
        exactly_once(&[&a, &b], 4) && a.host.cameras().len() == 2
    })
    .await;

    add_camera(&admin, "cam-new", None).await;
    until(Duration::from_secs(10), "the added camera running", || {
        exactly_once(&[&a, &b], 5)
    })
    .await;

    let holder = if a.host.cameras().contains(&"cam-0".to_string()) {
        &a
    } else {
        &b
    };
    admin.cameras.delete("cam-0").await.unwrap();
    until(
        Duration::from_secs(10),
        "the removed camera stopped",
        || exactly_once(&[&a, &b], 4) && !holder.host.cameras().contains(&"cam-0".to_string()),
    )
    .await;
    assert!(
        holder
            .host
            .stopped
            .lock()
            .unwrap()
            .contains(&"cam-0".to_string())
    );

    // Pinned to the worker that does not run it: it moves there.
    let other = if holder.name == "a" { &b } else { &a };
    let moving = holder.host.cameras()[0].clone();
    add_camera(&admin, &moving, Some(&other.name)).await;
    until(
        Duration::from_secs(10),
        "the pinned camera on its worker",
        || other.host.cameras().contains(&moving) && exactly_once(&[&a, &b], 4),
    )
    .await;

    // A broken camera is given back by whoever tries it, and the rest run on.
    let broken = FleetCamera {
        id: "cam-broken".into(),
        spec: serde_json::json!({ "broken": true }),
        pin: None,
        paused: false,
    };
    admin
        .cameras
        .put("cam-broken", serde_json::to_vec(&broken).unwrap().into())
        .await
        .unwrap();

    // Drained: every camera of b goes to a, b keeps heartbeating.
    admin
        .control
        .put(drain_key("b"), "true".into())
        .await
        .unwrap();
    until(Duration::from_secs(10), "b drained", || {
        b.host.cameras().is_empty() && a.host.cameras().len() == 4
    })
    .await;
    assert!(!a.host.cameras().contains(&"cam-broken".to_string()));
    admin.control.delete(drain_key("b")).await.unwrap();
    until(Duration::from_secs(15), "b back to its share", || {
        b.host.cameras().len() == 1 && exactly_once(&[&a, &b], 4)
    })
    .await;
    a.agent.stop().await;
    b.agent.stop().await;
}
