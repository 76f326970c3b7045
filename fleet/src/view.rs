//! What an operator sees of the fleet, read from its NATS JetStream at one moment:
//! workers (heard from lately or not, load, cameras), cameras (where each runs and in what
//! state), the latest moves with their reasons, and what waits in the queues. The CLI's
//! `vigil fleet status`, the web app's fleet page and the case service's `/metrics` all
//! show this one snapshot.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::kv;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use crate::FleetError;
use crate::agent::{FleetCamera, Heartbeat, Lease, Move};
use crate::bus::{Bus, EVENTS_STREAM, FLEET_STREAM, REFUSED_STREAM, SIGHTINGS_STREAM};

/// A worker not heard from for this long is shown silent: the agents take its cameras
/// after 5 s of no new heartbeat, by their own clocks; this view, made elsewhere, can
/// only compare the heartbeat's time with its own, so it allows a little more.
pub const SILENT_AFTER: Duration = Duration::from_secs(6);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerView {
    pub name: String,
    /// Heard from within [`SILENT_AFTER`].
    pub alive: bool,
    pub last_heard_s: f64,
    pub capacity: u32,
    pub load: f32,
    pub draining: bool,
    pub cameras: Vec<String>,
    pub started_at: DateTime<Utc>,
}

/// Where a camera stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Leased to a worker that is alive and says it runs it.
    Running,
    /// Leased to a worker that is alive but has not started it yet (or just gave it back).
    Starting,
    /// Leased to a worker not heard from: it moves once the others see the silence.
    OnSilentWorker,
    /// No lease: waiting for a worker with room.
    Unassigned,
    /// Kept in the list, run nowhere.
    Paused,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Running => "running",
            CameraState::Starting => "starting",
            CameraState::OnSilentWorker => "on_silent_worker",
            CameraState::Unassigned => "unassigned",
            CameraState::Paused => "paused",
        }
    }

    pub const ALL: [CameraState; 5] = [
        CameraState::Running,
        CameraState::Starting,
        CameraState::OnSilentWorker,
        CameraState::Unassigned,
        CameraState::Paused,
    ];
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraView {
    pub id: String,
    pub worker: Option<String>,
    pub state: CameraState,
    pub pin: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// Messages waiting in a stream.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    pub stream: String,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FleetView {
    pub at: DateTime<Utc>,
    pub workers: Vec<WorkerView>,
    pub cameras: Vec<CameraView>,
    /// The latest moves, oldest first.
    pub moves: Vec<Move>,
    pub queues: Vec<QueueView>,
}

impl FleetView {
    /// The fleet as it stands, with its latest `moves`.
    pub async fn read(bus: &Bus, moves: usize) -> Result<Self, FleetError> {
        let at = Utc::now();
        let heartbeats: Vec<(String, Heartbeat)> = all(&bus.workers).await?;
        let cameras: Vec<(String, FleetCamera)> = all(&bus.cameras).await?;
        let leases: HashMap<String, Lease> = all(&bus.leases).await?.into_iter().collect();
        let workers: Vec<WorkerView> = heartbeats
            .into_iter()
            .map(|(name, h)| {
                let last_heard_s = ((at - h.at).num_milliseconds() as f64 / 1000.0).max(0.0);
                WorkerView {
                    name,
                    alive: last_heard_s < SILENT_AFTER.as_secs_f64(),
                    last_heard_s,
                    capacity: h.capacity,
                    load: h.load,
                    draining: h.draining,
                    cameras: h.cameras,
                    started_at: h.started_at,
                }
            })
            .collect();
        let by_name: HashMap<&str, &WorkerView> =
            workers.iter().map(|w| (w.name.as_str(), w)).collect();
        let cameras = cameras
            .into_iter()
            .map(|(id, c)| {
                let lease = leases.get(&id);
                let holder = lease.and_then(|l| by_name.get(l.worker.as_str()));
                let state = match (c.paused, lease, holder) {
                    (true, _, _) => CameraState::Paused,
                    (false, None, _) => CameraState::Unassigned,
                    (false, Some(_), Some(w)) if w.alive && w.cameras.contains(&id) => {
                        CameraState::Running
                    }
                    (false, Some(_), Some(w)) if w.alive => CameraState::Starting,
                    (false, Some(_), _) => CameraState::OnSilentWorker,
                };
                CameraView {
                    worker: lease.map(|l| l.worker.clone()),
                    since: lease.map(|l| l.since),
                    id,
                    state,
                    pin: c.pin,
                }
            })
            .collect();
        let mut queues = Vec::new();
        for name in [EVENTS_STREAM, SIGHTINGS_STREAM, REFUSED_STREAM] {
            let mut stream = bus
                .js
                .get_stream(name)
                .await
                .map_err(|e| FleetError::Nats(format!("{name}: {e}")))?;
            let info = stream
                .info()
                .await
                .map_err(|e| FleetError::Nats(format!("{name}: {e}")))?;
            queues.push(QueueView {
                stream: name.to_string(),
                messages: info.state.messages,
                bytes: info.state.bytes,
            });
        }
        Ok(Self {
            at,
            workers,
            cameras,
            moves: latest_moves(bus, moves).await?,
            queues,
        })
    }

    /// The fleet's gauges in Prometheus' text format.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut family = |name: &str, help: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP vigil_fleet_{name} {help}");
            let _ = writeln!(out, "# TYPE vigil_fleet_{name} gauge");
            for (labels, value) in rows {
                let _ = writeln!(out, "vigil_fleet_{name}{labels} {value}");
            }
        };
        let label = |k: &str, v: &str| format!("{{{k}=\"{}\"}}", prometheus_escape(v));
        let alive = self.workers.iter().filter(|w| w.alive).count();
        family(
            "workers",
            "Workers by whether they were heard from lately.",
            vec![
                (label("state", "alive"), alive as f64),
                (
                    label("state", "silent"),
                    (self.workers.len() - alive) as f64,
                ),
            ],
        );
        family(
            "worker_alive",
            "1 when the worker was heard from lately.",
            self.workers
                .iter()
                .map(|w| (label("worker", &w.name), f64::from(u8::from(w.alive))))
                .collect(),
        );
        family(
            "worker_cameras",
            "Cameras the worker says it runs.",
            self.workers
                .iter()
                .map(|w| (label("worker", &w.name), w.cameras.len() as f64))
                .collect(),
        );
        family(
            "worker_capacity",
            "Cameras the worker can run.",
            self.workers
                .iter()
                .map(|w| (label("worker", &w.name), w.capacity as f64))
                .collect(),
        );
        family(
            "worker_load",
            "The worker's own measure of how busy it is, 0 to 1.",
            self.workers
                .iter()
                .map(|w| (label("worker", &w.name), f64::from(w.load)))
                .collect(),
        );
        family(
            "cameras",
            "The fleet's cameras by state.",
            CameraState::ALL
                .iter()
                .map(|s| {
                    let n = self.cameras.iter().filter(|c| c.state == *s).count();
                    (label("state", s.as_str()), n as f64)
                })
                .collect(),
        );
        family(
            "queue_messages",
            "Messages waiting in the fleet's streams (events and sightings not yet taken, events refused).",
            self.queues
                .iter()
                .map(|q| (label("stream", &q.stream), q.messages as f64))
                .collect(),
        );
        out
    }
}

fn prometheus_escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every key's latest value of a bucket, by key (what does not parse is skipped).
pub async fn all<T: serde::de::DeserializeOwned>(
    store: &kv::Store,
) -> Result<Vec<(String, T)>, FleetError> {
    let nats = |e: &dyn std::fmt::Display| FleetError::Nats(e.to_string());
    let mut out = Vec::new();
    let mut keys = store.keys().await.map_err(|e| nats(&e))?;
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| nats(&e))?;
        if let Some(bytes) = store.get(&key).await.map_err(|e| nats(&e))?
            && let Ok(value) = serde_json::from_slice(&bytes)
        {
            out.push((key, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The latest `n` moves on the fleet's stream, oldest first.
pub async fn latest_moves(bus: &Bus, n: usize) -> Result<Vec<Move>, FleetError> {
    let nats = |e: &dyn std::fmt::Display| FleetError::Nats(format!("{FLEET_STREAM}: {e}"));
    let mut stream = bus
        .js
        .get_stream(FLEET_STREAM)
        .await
        .map_err(|e| nats(&e))?;
    let last = stream
        .info()
        .await
        .map_err(|e| nats(&e))?
        .state
        .last_sequence;
    if last == 0 || n == 0 {
        return Ok(Vec::new());
    }
    let from = last.saturating_sub(n as u64 - 1).max(1);
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            inactive_threshold: Duration::from_secs(10),
            ..Default::default()
        })
        .await
        .map_err(|e| nats(&e))?;
    let mut messages = consumer
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .map_err(|e| nats(&e))?;
    let mut out = Vec::new();
    while let Some(m) = messages.next().await {
        let Ok(m) = m else { break };
        if let Ok(mv) = serde_json::from_slice::<Move>(&m.payload) {
            out.push(mv);
        }
        let _ = m.ack().await;
    }
    Ok(out)
}
