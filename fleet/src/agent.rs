//! A worker's membership in the fleet and the cameras it runs.
//!
//! No coordinator: every worker heartbeats its capacity into `vigil_workers`, watches the
//! camera list, the leases and the other workers, and claims cameras by creating (or, from
//! a silent worker, compare-and-swapping) their lease keys in `vigil_leases` until it runs
//! its share: its capacity's part of all cameras, rounded up, at most its capacity. A
//! worker that runs more than its share while another runs less gives one camera back a
//! round; so a worker that comes back takes its share. Two workers claiming one camera at
//! once is settled by the server: one create or update succeeds.
//!
//! A worker is silent when its heartbeat's revision has not changed for `silent_after`
//! on the observer's monotonic clock (NATS 2.9 has no per-key expiry, and no clocks are
//! compared); a heartbeat of a new incarnation under the same name ends the old one at
//! once. See [`crate::gate`] for why a silent worker has stopped emitting before then.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, Operation};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::bus::{Bus, MOVES_SUBJECT};
use crate::gate::{Fence, Gate};

/// A worker's heartbeat, as stored under its name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    pub worker: String,
    /// Changes at every start: leases of an earlier incarnation are free at once.
    pub incarnation: Uuid,
    /// Cameras it can run.
    pub capacity: u32,
    pub cameras: Vec<String>,
    /// The host's own measure of how busy it is, 0 to 1 (shown, not used to assign).
    pub load: f32,
    pub draining: bool,
    pub started_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// Who runs a camera; the key's revision is the camera's fencing epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    pub worker: String,
    pub incarnation: Uuid,
    pub since: DateTime<Utc>,
    pub reason: MoveReason,
}

/// A camera in the fleet's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetCamera {
    pub id: String,
    /// What a worker needs to run it; the fleet does not look inside.
    pub spec: serde_json::Value,
    /// Run it on this worker while that worker is alive.
    #[serde(default)]
    pub pin: Option<String>,
    /// Kept in the list, run nowhere.
    #[serde(default)]
    pub paused: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    /// It ran nowhere.
    Unassigned,
    /// Its worker fell silent (killed, cut off, hung).
    WorkerSilent,
    /// Its worker started again (a new incarnation).
    WorkerRestarted,
    /// Its worker ran more than its share while another ran less.
    Rebalance,
    /// Its worker is being drained.
    Drained,
    /// An operator pinned it to another worker.
    Pinned,
    /// Removed from the fleet's configuration.
    Removed,
    Paused,
    /// Its worker stopped.
    Stopped,
    /// It could not be started on its worker.
    Failed,
}

impl MoveReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            MoveReason::Unassigned => "unassigned",
            MoveReason::WorkerSilent => "worker_silent",
            MoveReason::WorkerRestarted => "worker_restarted",
            MoveReason::Rebalance => "rebalance",
            MoveReason::Drained => "drained",
            MoveReason::Pinned => "pinned",
            MoveReason::Removed => "removed",
            MoveReason::Paused => "paused",
            MoveReason::Stopped => "stopped",
            MoveReason::Failed => "failed",
        }
    }
}

/// A camera changing hands, as published on `vigil.fleet.moves`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Move {
    pub camera: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: MoveReason,
    pub at: DateTime<Utc>,
    /// The lease's revision after the move (0 when released).
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What runs cameras for the agent: the live runner in `vigil run`, a simulation in the
/// province benchmark, a recording fake in tests. Calls may block (connecting, finishing
/// a clip); the agent makes them off its own task.
pub trait CameraHost: Send + Sync + 'static {
    /// Start `camera`; what it finds leaves only as `gate` admits. An error names why it
    /// cannot run here (the lease is given back and the camera is not tried here again
    /// for a while).
    fn start(&self, camera: &FleetCamera, gate: Gate) -> Result<(), String>;
    /// Stop it, finishing what it found (its gate decides what of it leaves).
    fn stop(&self, camera: &str);
    /// How busy this worker is, 0 to 1, for the fleet view.
    fn load(&self) -> f32 {
        0.0
    }
}

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub worker: String,
    pub capacity: u32,
    pub heartbeat_every: Duration,
    /// A worker whose heartbeat has not changed for this long is silent.
    pub silent_after: Duration,
    /// How long a stored heartbeat lets this worker emit: less than `silent_after`.
    pub fence_after: Duration,
    /// How often the agent decides what to claim and give back.
    pub round: Duration,
    /// Claims a round at most, so a start spreads cameras over the workers starting.
    pub claims_per_round: usize,
    /// A camera that failed to start here is not tried here again for this long.
    pub failed_backoff: Duration,
}

impl AgentSettings {
    pub fn new(worker: &str, capacity: u32) -> Self {
        Self {
            worker: worker.to_string(),
            capacity,
            heartbeat_every: Duration::from_secs(1),
            silent_after: Duration::from_secs(5),
            fence_after: Duration::from_millis(3_500),
            round: Duration::from_millis(250),
            claims_per_round: 16,
            failed_backoff: Duration::from_secs(60),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.worker.is_empty()
            || self.worker.len() > 64
            || !self
                .worker
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(format!(
                "worker name `{}`: 1 to 64 letters, digits, `-` or `_`",
                self.worker
            ));
        }
        if self.fence_after + self.heartbeat_every > self.silent_after {
            return Err(format!(
                "a heartbeat every {:?} fencing after {:?} needs silence of more than both together before takeover, not {:?}",
                self.heartbeat_every, self.fence_after, self.silent_after
            ));
        }
        Ok(())
    }
}

/// What the agent shows of itself.
#[derive(Debug, Clone, Default)]
pub struct AgentView {
    pub cameras: Vec<String>,
    /// Heartbeats stored so far.
    pub heartbeats: u64,
    pub connected: bool,
}

pub struct Agent {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    view: Arc<Mutex<AgentView>>,
    fence: Arc<Fence>,
}

impl Agent {
    /// Join the fleet on the current Tokio runtime.
    pub fn start(
        bus: Bus,
        settings: AgentSettings,
        host: Arc<dyn CameraHost>,
    ) -> Result<Self, crate::FleetError> {
        settings.check().map_err(crate::FleetError::Settings)?;
        let (stop, stopping) = watch::channel(false);
        let view = Arc::new(Mutex::new(AgentView::default()));
        let fence = Arc::new(Fence::default());
        let state = State {
            bus,
            incarnation: Uuid::new_v4(),
            started_at: Utc::now(),
            settings,
            host,
            fence: fence.clone(),
            view: view.clone(),
            workers: HashMap::new(),
            leases: HashMap::new(),
            cameras: HashMap::new(),
            draining: HashSet::new(),
            mine: HashMap::new(),
            failed: HashMap::new(),
            heartbeats: 0,
        };
        let task = tokio::spawn(state.run(stopping));
        Ok(Self {
            stop,
            task,
            view,
            fence,
        })
    }

    pub fn view(&self) -> AgentView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Leave the fleet: every camera stopped (finishing what it found) and its lease
    /// given back, the heartbeat removed, so the others take the cameras at once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Vanish as a killed process would: nothing given back, no more heartbeats. (The
    /// cameras' gates close when the fence lapses.) For simulations and tests.
    pub fn vanish(self) {
        self.task.abort();
    }

    pub fn fence(&self) -> Arc<Fence> {
        self.fence.clone()
    }
}

struct SeenWorker {
    beat: Heartbeat,
    revision: u64,
    /// When this agent saw the revision change last.
    changed_at: Instant,
}

struct SeenLease {
    lease: Lease,
    revision: u64,
    /// The server's time of this revision.
    created: DateTime<Utc>,
    first_seen: Instant,
}

/// A camera this worker may take, and how.
struct Candidate {
    /// Not pinned here (pinned ones first).
    elsewhere: bool,
    order: u64,
    id: String,
    reason: MoveReason,
    revision: Option<u64>,
    from: Option<String>,
}

struct Running {
    gate: Gate,
    revision: u64,
}

struct State {
    bus: Bus,
    incarnation: Uuid,
    started_at: DateTime<Utc>,
    settings: AgentSettings,
    host: Arc<dyn CameraHost>,
    fence: Arc<Fence>,
    view: Arc<Mutex<AgentView>>,
    workers: HashMap<String, SeenWorker>,
    leases: HashMap<String, SeenLease>,
    cameras: HashMap<String, FleetCamera>,
    draining: HashSet<String>,
    mine: HashMap<String, Running>,
    /// Cameras that failed to start here, and when.
    failed: HashMap<String, Instant>,
    heartbeats: u64,
}

/// The four buckets' watches; any that ends is opened again (its bucket's view rebuilt).
struct Watches {
    workers: Option<kv::Watch>,
    leases: Option<kv::Watch>,
    cameras: Option<kv::Watch>,
    control: Option<kv::Watch>,
}

fn server_time(t: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_else(Utc::now)
}

/// The control bucket's key that drains a worker (value `true`).
pub fn drain_key(worker: &str) -> String {
    format!("drain.{worker}")
}

async fn next_entry(watch: &mut Option<kv::Watch>) -> Option<Result<kv::Entry, kv::WatcherError>> {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

impl State {
    async fn run(mut self, mut stopping: watch::Receiver<bool>) {
        let mut watches = Watches {
            workers: None,
            leases: None,
            cameras: None,
            control: None,
        };
        let mut round = tokio::time::interval(self.settings.round);
        round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_beat = Instant::now();
        let mut next_reopen = Instant::now();
        let mut stopping_cameras = Vec::new();
        loop {
            if Instant::now() >= next_reopen {
                self.reopen(&mut watches).await;
                next_reopen = Instant::now() + Duration::from_secs(1);
            }
            tokio::select! {
                _ = round.tick() => {
                    if Instant::now() >= next_beat {
                        next_beat = Instant::now() + self.settings.heartbeat_every;
                        self.heartbeat().await;
                    }
                    self.decide(&mut stopping_cameras).await;
                    stopping_cameras.retain(|h: &tokio::task::JoinHandle<()>| !h.is_finished());
                }
                e = next_entry(&mut watches.workers) => match e {
                    Some(Ok(e)) => self.seen_worker(e),
                    _ => watches.workers = None,
                },
                e = next_entry(&mut watches.leases) => match e {
                    Some(Ok(e)) => self.seen_lease(e),
                    _ => watches.leases = None,
                },
                e = next_entry(&mut watches.cameras) => match e {
                    Some(Ok(e)) => self.seen_camera(e),
                    _ => watches.cameras = None,
                },
                e = next_entry(&mut watches.control) => match e {
                    Some(Ok(e)) => self.seen_control(e),
                    _ => watches.control = None,
                },
                _ = stopping.changed() => break,
            }
        }
        self.leave(stopping_cameras).await;
    }

    /// Open the watches that are not open. A bucket's view is rebuilt from its watch's
    /// first values (what was deleted meanwhile must not linger); workers' are kept, so
    /// their silence is still measured from when they last changed.
    async fn reopen(&mut self, watches: &mut Watches) {
        let limit = Duration::from_secs(1);
        let open = |store: kv::Store| async move {
            // Every key's current value first, then every change.
            match tokio::time::timeout(limit, store.watch_with_history(">")).await {
                Ok(Ok(w)) => Some(w),
                _ => None,
            }
        };
        if watches.workers.is_none() {
            watches.workers = open(self.bus.workers.clone()).await;
        }
        if watches.leases.is_none() {
            watches.leases = open(self.bus.leases.clone()).await;
            if watches.leases.is_some() {
                self.leases.clear();
            }
        }
        if watches.cameras.is_none() {
            watches.cameras = open(self.bus.cameras.clone()).await;
            if watches.cameras.is_some() {
                self.cameras.clear();
            }
        }
        if watches.control.is_none() {
            watches.control = open(self.bus.control.clone()).await;
            if watches.control.is_some() {
                self.draining.clear();
            }
        }
    }

    fn seen_worker(&mut self, e: kv::Entry) {
        match e.operation {
            Operation::Put => {
                let Ok(beat) = serde_json::from_slice::<Heartbeat>(&e.value) else {
                    tracing::warn!(key = %e.key, "a worker heartbeat that is not one; ignored");
                    return;
                };
                let now = Instant::now();
                match self.workers.get_mut(&e.key) {
                    Some(seen) if seen.revision == e.revision => {}
                    Some(seen) => {
                        seen.beat = beat;
                        seen.revision = e.revision;
                        seen.changed_at = now;
                    }
                    None => {
                        self.workers.insert(
                            e.key,
                            SeenWorker {
                                beat,
                                revision: e.revision,
                                changed_at: now,
                            },
                        );
                    }
                }
            }
            Operation::Delete | Operation::Purge => {
                self.workers.remove(&e.key);
            }
        }
    }

    fn seen_lease(&mut self, e: kv::Entry) {
        match e.operation {
            Operation::Put => {
                let Ok(lease) = serde_json::from_slice::<Lease>(&e.value) else {
                    tracing::warn!(key = %e.key, "a camera lease that is not one; ignored");
                    return;
                };
                if self
                    .leases
                    .get(&e.key)
                    .is_some_and(|l| l.revision >= e.revision)
                {
                    return;
                }
                self.leases.insert(
                    e.key,
                    SeenLease {
                        lease,
                        revision: e.revision,
                        created: server_time(e.created),
                        first_seen: Instant::now(),
                    },
                );
            }
            Operation::Delete | Operation::Purge => {
                if self
                    .leases
                    .get(&e.key)
                    .is_some_and(|l| l.revision > e.revision)
                {
                    return;
                }
                self.leases.remove(&e.key);
            }
        }
    }

    fn seen_camera(&mut self, e: kv::Entry) {
        match e.operation {
            Operation::Put => match serde_json::from_slice::<FleetCamera>(&e.value) {
                Ok(camera) if camera.id == e.key => {
                    self.cameras.insert(e.key, camera);
                }
                _ => tracing::warn!(key = %e.key, "a fleet camera entry that is not one; ignored"),
            },
            Operation::Delete | Operation::Purge => {
                self.cameras.remove(&e.key);
            }
        }
    }

    fn seen_control(&mut self, e: kv::Entry) {
        let Some(worker) = e.key.strip_prefix("drain.") else {
            return;
        };
        if e.operation == Operation::Put && e.value.as_ref() == b"true" {
            self.draining.insert(worker.to_string());
        } else {
            self.draining.remove(worker);
        }
    }

    async fn heartbeat(&mut self) {
        let sent = Instant::now();
        let mut cameras: Vec<String> = self.mine.keys().cloned().collect();
        cameras.sort();
        let beat = Heartbeat {
            worker: self.settings.worker.clone(),
            incarnation: self.incarnation,
            capacity: self.settings.capacity,
            cameras,
            load: self.host.load(),
            draining: self.draining.contains(&self.settings.worker),
            started_at: self.started_at,
            at: Utc::now(),
        };
        let Ok(value) = serde_json::to_vec(&beat) else {
            return;
        };
        let put = self.bus.workers.put(&self.settings.worker, value.into());
        let stored = matches!(
            tokio::time::timeout(self.settings.heartbeat_every, put).await,
            Ok(Ok(_))
        );
        if stored {
            self.fence.renewed(sent, self.settings.fence_after);
            self.heartbeats += 1;
        } else if self.heartbeats > 0 && !self.fence.holds() {
            tracing::warn!(worker = %self.settings.worker, "heartbeats are not being stored: holding the cameras' records back");
        }
        if let Ok(mut view) = self.view.lock() {
            view.heartbeats = self.heartbeats;
            view.connected = stored;
        }
    }

    fn me(&self) -> &str {
        &self.settings.worker
    }

    /// Is this worker (by its last heartbeat) alive?
    fn alive(&self, worker: &SeenWorker, now: Instant) -> bool {
        now.duration_since(worker.changed_at) <= self.settings.silent_after
    }

    /// Why a camera's lease may be taken, if it may: (reason, the lease's revision, the
    /// worker it is taken from).
    fn free(
        &self,
        camera: &str,
        now: Instant,
    ) -> Option<(MoveReason, Option<u64>, Option<String>)> {
        let Some(seen) = self.leases.get(camera) else {
            return Some((MoveReason::Unassigned, None, None));
        };
        let holder = &seen.lease.worker;
        let take = |reason| Some((reason, Some(seen.revision), Some(holder.clone())));
        let waited = now.duration_since(seen.first_seen) > self.settings.silent_after;
        if holder == self.me() && seen.lease.incarnation != self.incarnation {
            return take(MoveReason::WorkerRestarted);
        }
        match self.workers.get(holder) {
            Some(w) if w.beat.incarnation == seen.lease.incarnation => {
                if !self.alive(w, now) {
                    take(MoveReason::WorkerSilent)
                } else if waited && !w.beat.cameras.iter().any(|c| c == camera) {
                    // Alive, but it does not run it (it could not give it back).
                    take(MoveReason::Unassigned)
                } else {
                    None
                }
            }
            // The holder started again since it took the lease.
            Some(w) if w.beat.started_at > seen.lease.since => take(MoveReason::WorkerRestarted),
            _ if waited => take(MoveReason::WorkerSilent),
            _ => None,
        }
    }

    /// What a worker's share of the cameras is: its capacity's part, rounded up, at
    /// most its capacity.
    fn share(capacity: u32, cameras: usize, total_capacity: u64) -> usize {
        if total_capacity == 0 {
            return 0;
        }
        let part = (cameras as u64 * capacity as u64).div_ceil(total_capacity);
        part.min(capacity as u64) as usize
    }

    async fn decide(&mut self, stopping: &mut Vec<tokio::task::JoinHandle<()>>) {
        let now = Instant::now();
        if !self.fence.holds() {
            // Cut off (or not yet heard): the gates hold records back; nothing is claimed
            // or given back until the server answers again.
            return;
        }
        let me = self.me().to_string();
        let draining_me = self.draining.contains(&me);
        let alive: Vec<(String, u32)> = self
            .workers
            .iter()
            .filter(|(name, w)| {
                self.alive(w, now) && !self.draining.contains(*name) && w.beat.capacity > 0
            })
            .map(|(name, w)| (name.clone(), w.beat.capacity))
            .collect();
        let alive_names: HashSet<String> = alive.iter().map(|(n, _)| n.clone()).collect();
        let total: u64 = alive.iter().map(|(_, c)| *c as u64).sum();
        let runnable = self.cameras.values().filter(|c| !c.paused).count();

        // What this worker runs and should not.
        let mut lose = Vec::new();
        let mut give_back = Vec::new();
        for (id, running) in &self.mine {
            match self.leases.get(id) {
                Some(l) if l.revision != running.revision => {
                    lose.push((id.clone(), l.created));
                    continue;
                }
                None => {
                    lose.push((id.clone(), Utc::now()));
                    continue;
                }
                _ => {}
            }
            let reason = match self.cameras.get(id) {
                None => Some(MoveReason::Removed),
                Some(c) if c.paused => Some(MoveReason::Paused),
                Some(c)
                    if c.pin
                        .as_ref()
                        .is_some_and(|p| *p != me && alive_names.contains(p)) =>
                {
                    Some(MoveReason::Pinned)
                }
                _ if draining_me => Some(MoveReason::Drained),
                _ => None,
            };
            if let Some(reason) = reason {
                give_back.push((id.clone(), reason));
            }
        }
        for (id, at) in lose {
            if let Some(running) = self.mine.remove(&id) {
                tracing::warn!(camera = %id, "its lease was taken: stopping it here");
                running.gate.lose(at);
                stopping.push(self.stop_camera(&id));
            }
        }
        for (id, reason) in give_back {
            self.give_back(&id, reason, stopping).await;
        }

        let my_share = if draining_me {
            0
        } else {
            Self::share(self.settings.capacity, runnable, total)
        };
        let held = self.mine.len();
        let capacity = self.settings.capacity as usize;
        // Cameras pinned here are taken whatever the share (within capacity); the others
        // up to the share.
        let mut candidates: Vec<Candidate> = Vec::new();
        if held < capacity && !draining_me {
            for c in self.cameras.values() {
                if c.paused || self.mine.contains_key(&c.id) {
                    continue;
                }
                if self
                    .failed
                    .get(&c.id)
                    .is_some_and(|t| now.duration_since(*t) < self.settings.failed_backoff)
                {
                    continue;
                }
                let pinned_here = c.pin.as_deref() == Some(me.as_str());
                if !pinned_here && held >= my_share {
                    continue;
                }
                if c.pin
                    .as_ref()
                    .is_some_and(|p| *p != me && alive_names.contains(p))
                {
                    continue;
                }
                if let Some((reason, revision, from)) = self.free(&c.id, now) {
                    // Spread: each worker prefers a different order of the cameras.
                    let order = spread(&me, &c.id);
                    candidates.push(Candidate {
                        elsewhere: !pinned_here,
                        order,
                        id: c.id.clone(),
                        reason,
                        revision,
                        from,
                    });
                }
            }
        }
        if !candidates.is_empty() {
            candidates.sort_by_key(|c| (c.elsewhere, c.order));
            let pinned = candidates.iter().filter(|c| !c.elsewhere).count();
            let wanted = my_share
                .saturating_sub(held)
                .max(pinned)
                .min(capacity - held)
                .min(self.settings.claims_per_round);
            for c in candidates.into_iter().take(wanted) {
                self.claim(&c.id, c.reason, c.revision, c.from).await;
            }
        } else if held > my_share {
            // Give one back a round, only when another worker runs less than its share
            // (else nobody would take it).
            let mut holding: HashMap<&str, usize> = HashMap::new();
            for l in self.leases.values() {
                *holding.entry(l.lease.worker.as_str()).or_default() += 1;
            }
            let someone_short = alive.iter().any(|(name, capacity)| {
                *name != me
                    && holding.get(name.as_str()).copied().unwrap_or(0)
                        < Self::share(*capacity, runnable, total)
            });
            if someone_short || draining_me {
                let unpinned = self
                    .mine
                    .keys()
                    .filter(|id| {
                        self.cameras.get(*id).and_then(|c| c.pin.as_deref()) != Some(me.as_str())
                    })
                    .max_by_key(|id| spread(&me, id))
                    .cloned();
                if let Some(id) = unpinned {
                    self.give_back(&id, MoveReason::Rebalance, stopping).await;
                }
            }
        }
        if let Ok(mut view) = self.view.lock() {
            let mut cameras: Vec<String> = self.mine.keys().cloned().collect();
            cameras.sort();
            view.cameras = cameras;
        }
    }

    async fn claim(
        &mut self,
        id: &str,
        reason: MoveReason,
        revision: Option<u64>,
        from: Option<String>,
    ) {
        let Some(camera) = self.cameras.get(id).cloned() else {
            return;
        };
        let lease = Lease {
            worker: self.me().to_string(),
            incarnation: self.incarnation,
            since: Utc::now(),
            reason: reason.clone(),
        };
        let Ok(value) = serde_json::to_vec(&lease) else {
            return;
        };
        let limit = Duration::from_secs(2);
        let stored = match revision {
            None => tokio::time::timeout(limit, self.bus.leases.create(id, value.into()))
                .await
                .map(|r| r.map_err(|e| e.to_string())),
            Some(rev) => tokio::time::timeout(limit, self.bus.leases.update(id, value.into(), rev))
                .await
                .map(|r| r.map_err(|e| e.to_string())),
        };
        let epoch = match stored {
            Ok(Ok(epoch)) => epoch,
            // Another worker was quicker, or the server did not answer: next round.
            Ok(Err(e)) => {
                tracing::debug!(camera = %id, error = %e, "lease not taken");
                return;
            }
            Err(_) => return,
        };
        self.leases.insert(
            id.to_string(),
            SeenLease {
                lease,
                revision: epoch,
                created: Utc::now(),
                first_seen: Instant::now(),
            },
        );
        let gate = Gate::new(self.fence.clone(), epoch);
        let host = self.host.clone();
        let started = {
            let gate = gate.clone();
            tokio::task::spawn_blocking(move || host.start(&camera, gate))
                .await
                .unwrap_or_else(|e| Err(format!("its start panicked: {e}")))
        };
        match started {
            Ok(()) => {
                tracing::info!(camera = %id, from = ?from, reason = reason.as_str(), epoch, "camera taken");
                self.mine.insert(
                    id.to_string(),
                    Running {
                        gate,
                        revision: epoch,
                    },
                );
                self.announce(Move {
                    camera: id.to_string(),
                    from,
                    to: Some(self.me().to_string()),
                    reason,
                    at: Utc::now(),
                    epoch,
                    detail: None,
                });
            }
            Err(why) => {
                tracing::error!(camera = %id, error = %why, "camera cannot run here: giving it back");
                self.failed.insert(id.to_string(), Instant::now());
                let _ = tokio::time::timeout(
                    limit,
                    self.bus.leases.delete_expect_revision(id, Some(epoch)),
                )
                .await;
                self.announce(Move {
                    camera: id.to_string(),
                    from: Some(self.me().to_string()),
                    to: None,
                    reason: MoveReason::Failed,
                    at: Utc::now(),
                    epoch: 0,
                    detail: Some(why),
                });
            }
        }
    }

    /// Give a camera back: its gate closes now (what it found before now still leaves),
    /// its lease is deleted so another worker takes it at once, and it stops in the
    /// background, finishing its clips.
    async fn give_back(
        &mut self,
        id: &str,
        reason: MoveReason,
        stopping: &mut Vec<tokio::task::JoinHandle<()>>,
    ) {
        let Some(running) = self.mine.remove(id) else {
            return;
        };
        running.gate.lose(Utc::now());
        let deleted = tokio::time::timeout(
            Duration::from_secs(2),
            self.bus
                .leases
                .delete_expect_revision(id, Some(running.revision)),
        )
        .await;
        if !matches!(deleted, Ok(Ok(()))) {
            tracing::warn!(camera = %id, "its lease could not be given back; the others take it once they see it is not run here");
        }
        tracing::info!(camera = %id, reason = reason.as_str(), "camera given back");
        stopping.push(self.stop_camera(id));
        self.announce(Move {
            camera: id.to_string(),
            from: Some(self.me().to_string()),
            to: None,
            reason,
            at: Utc::now(),
            epoch: 0,
            detail: None,
        });
    }

    fn stop_camera(&self, id: &str) -> tokio::task::JoinHandle<()> {
        let host = self.host.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || host.stop(&id))
    }

    fn announce(&self, m: Move) {
        let js = self.bus.js.clone();
        tokio::spawn(async move {
            let Ok(payload) = serde_json::to_vec(&m) else {
                return;
            };
            if let Ok(ack) = js.publish(MOVES_SUBJECT, payload.into()).await {
                let _ = tokio::time::timeout(Duration::from_secs(2), ack).await;
            }
        });
    }

    async fn leave(mut self, mut stopping: Vec<tokio::task::JoinHandle<()>>) {
        let ids: Vec<String> = self.mine.keys().cloned().collect();
        for id in ids {
            self.give_back(&id, MoveReason::Stopped, &mut stopping)
                .await;
        }
        for s in stopping {
            let _ = s.await;
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.bus.workers.delete(&self.settings.worker),
        )
        .await;
        self.fence.end();
    }
}

/// A stable, per-worker order of cameras (FNV-1a of both names).
fn spread(worker: &str, camera: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in worker.bytes().chain([0]).chain(camera.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
