//! `bench-fleet`: a simulated province on a real NATS JetStream server and a real case
//! store. Workers, cameras and their reads are simulated (no decoding, no inference);
//! everything between them is the fleet's own code: each simulated worker is an
//! [`Agent`] on its own connection, claiming leases, heartbeating and fencing; what its
//! cameras "read" goes out through the worker's [`BusSink`] when the camera's gate admits
//! it; the case service's [`Consumers`] take it into the database. Measured: time to full
//! assignment, failover when a share of the workers vanish at once, the server's messages
//! and bytes a second, and the intake rate of a backlog of sightings.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use futures_util::StreamExt;
use vigil_core::{DataDir, EventSink, Sighting};
use vigil_evidence::EvidenceKey;
use vigil_evidence::sample::{SampleOf, file_sample_package};
use vigil_fleet::intake::Consumers;
use vigil_fleet::{Admit, Agent, AgentSettings, Bus, BusSink, CameraHost, FleetCamera, Gate};
use vigil_ticketing::bus_intake::BusIntake;
use vigil_ticketing::{EvidenceStore, Intake};

use super::super::Context;

#[derive(clap::Args)]
pub struct BenchFleetArgs {
    /// The NATS server (JetStream on) to use; `scripts/bench fleet` starts one of its own.
    #[arg(long)]
    pub nats: String,
    /// Its monitoring address (`nats-server -m`), for the server's own message counts.
    #[arg(long)]
    pub monitor: Option<String>,
    #[arg(long, default_value_t = 1300)]
    pub cameras: usize,
    #[arg(long, default_value_t = 100)]
    pub workers: usize,
    /// Cameras a worker can run.
    #[arg(long, default_value_t = 16)]
    pub capacity: u32,
    /// Workers that vanish at once, in percent.
    #[arg(long, default_value_t = 10)]
    pub kill_percent: usize,
    /// A plate read from each camera every this many seconds.
    #[arg(long, default_value_t = 2.0)]
    pub sighting_every: f64,
    /// A violation (with its evidence package) from each camera every this many seconds.
    #[arg(long, default_value_t = 300.0)]
    pub event_every: f64,
    /// Bytes of each evidence package's clip.
    #[arg(long, default_value_t = 256 * 1024)]
    pub clip_bytes: usize,
    /// Seconds of steady running measured.
    #[arg(long, default_value_t = 20)]
    pub steady: u64,
    /// Sightings published while the case service is away, then taken in.
    #[arg(long, default_value_t = 200_000)]
    pub backlog: usize,
}

/// A simulated camera on a simulated worker.
struct SimCamera {
    gate: Gate,
    next_sighting: Instant,
    next_event: Instant,
}

#[derive(Default)]
struct Counts {
    sightings: AtomicU64,
    events: AtomicU64,
    held: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// A worker's cameras: started and stopped by its agent, read by its emitting thread.
struct SimHost {
    cameras: Mutex<HashMap<String, SimCamera>>,
    sighting_every: Duration,
    event_every: Duration,
}

impl CameraHost for SimHost {
    fn start(&self, camera: &FleetCamera, gate: Gate) -> Result<(), String> {
        // Spread the first reads over the interval, as real cameras are not in step.
        let spread = |every: Duration| {
            let h = camera
                .id
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31) ^ b as u64);
            Instant::now() + every.mul_f64((h % 1000) as f64 / 1000.0)
        };
        let sim = SimCamera {
            gate,
            next_sighting: spread(self.sighting_every),
            next_event: spread(self.event_every),
        };
        self.lock().insert(camera.id.clone(), sim);
        Ok(())
    }

    fn stop(&self, camera: &str) {
        self.lock().remove(camera);
    }
}

impl SimHost {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SimCamera>> {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}

/// What one simulated worker needs to emit as a real one does.
struct Emitter {
    host: Arc<SimHost>,
    sink: BusSink,
    evidence: DataDir,
    key: Arc<EvidenceKey>,
    clip: Arc<Vec<u8>>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    serial: u64,
}

impl Emitter {
    /// The worker's analysis threads, in one: every due read and violation of its
    /// cameras goes out through its sink, if the camera's gate lets it.
    fn run(mut self, worker: usize) {
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let mut due = Vec::new();
            for (id, cam) in self.host.lock().iter_mut() {
                if cam.next_sighting <= now {
                    cam.next_sighting += self.host.sighting_every;
                    due.push((id.clone(), cam.gate.clone(), false));
                }
                if cam.next_event <= now {
                    cam.next_event += self.host.event_every;
                    due.push((id.clone(), cam.gate.clone(), true));
                }
            }
            for (camera, gate, is_event) in due {
                self.serial += 1;
                match gate.admit(Utc::now()) {
                    Admit::Now => {}
                    Admit::Hold => {
                        self.counts.held.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Admit::Never => {
                        self.counts.refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let sent = if is_event {
                    self.event(worker, &camera).map(|_| &self.counts.events)
                } else {
                    self.sighting(worker, &camera)
                        .map(|_| &self.counts.sightings)
                };
                match sent {
                    Ok(counter) => counter.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        tracing::warn!(error = %e, "simulated worker could not publish");
                        self.counts.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn id(&self, worker: usize) -> uuid::Uuid {
        uuid::Uuid::from_u128((0x5157_u128 << 112) | ((worker as u128) << 64) | self.serial as u128)
    }

    fn sighting(&self, worker: usize, camera: &str) -> Result<()> {
        let n = ((worker as u64) << 32) | self.serial;
        let s = Sighting {
            sighting_id: self.id(worker),
            camera_id: camera.to_string(),
            plate: super::search::bench_plate(n),
            confidence: 0.93,
            vehicle_class: "car".into(),
            plate_colour: None,
            seen_at: Utc::now(),
            source: format!("rtsp://simulated/{camera}"),
            thumbnail: None,
            video_offset_ms: None,
        };
        self.sink.record_sighting(&s)?;
        Ok(())
    }

    fn event(&self, worker: usize, camera: &str) -> Result<()> {
        let n = ((worker as u32) << 20) ^ self.serial as u32;
        let mut event = super::bench_event(0, n);
        event.event_id = self.id(worker);
        event.camera_id = camera.to_string();
        event.occurred_at = Utc::now();
        let of = SampleOf {
            event_id: event.event_id,
            camera_id: &event.camera_id,
            violation: event.violation.as_str(),
        };
        event.evidence_manifest_sha256 = file_sample_package(
            &self.evidence.evidence(),
            &of,
            &self.key,
            &[("clip.mp4", &self.clip[..])],
        )?;
        self.sink.record_event(&event)?;
        Ok(())
    }
}

/// The server's own counters (`/varz` of its monitoring port).
#[derive(Clone, Copy, Default)]
struct Varz {
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
}

fn varz(monitor: &str) -> Result<Varz> {
    let host = monitor.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host).with_context(|| format!("{host}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(conn, "GET /varz HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no body in the /varz answer")?;
    let v: serde_json::Value = serde_json::from_str(body)?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(Varz {
        in_msgs: n("in_msgs"),
        out_msgs: n("out_msgs"),
        in_bytes: n("in_bytes"),
        out_bytes: n("out_bytes"),
    })
}

struct Worker {
    host: Arc<SimHost>,
    agent: Option<Agent>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Where each camera runs: camera → workers running it (more than one is a fault).
fn placement(workers: &[Worker]) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for w in workers.iter().filter(|w| w.agent.is_some()) {
        for c in w.host.running() {
            *runs.entry(c).or_insert(0) += 1;
        }
    }
    runs
}

fn exactly_once(workers: &[Worker], cameras: usize) -> bool {
    let runs = placement(workers);
    runs.len() == cameras && runs.values().all(|&n| n == 1)
}

pub fn run(ctx: &Context, args: BenchFleetArgs) -> Result<()> {
    if args.workers == 0 || args.cameras == 0 || args.capacity == 0 {
        bail!("--workers, --cameras and --capacity must each be at least 1");
    }
    if (args.workers as u64) * (args.capacity as u64) < args.cameras as u64 {
        bail!(
            "{} workers of capacity {} cannot run {} cameras",
            args.workers,
            args.capacity,
            args.cameras
        );
    }
    let store = super::bench_store(ctx, "fleet")?;
    let scratch = super::tempfile_dir()?;
    let result = ctx.runtime.block_on(province(ctx, store, &scratch, &args));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn province(
    ctx: &Context,
    store: vigil_ticketing::CaseStore,
    scratch: &std::path::Path,
    args: &BenchFleetArgs,
) -> Result<()> {
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let service = DataDir::new(scratch.join("service"));
    let key = Arc::new(EvidenceKey::load_or_create(&service.keys())?);
    store
        .trust_key(&key.public_hex(), "bench-fleet", Utc::now())
        .await?;
    let intake = Intake::new(
        store.clone(),
        ctx.load_fines()?,
        EvidenceStore::new(&service),
    );
    let bus_intake = Arc::new(BusIntake {
        intake,
        data: service.clone(),
    });
    let admin = Bus::connect(&args.nats, "bench-fleet admin").await?;
    let consumers = Consumers::start(admin.clone(), bus_intake.clone());
    let server_before = args.monitor.as_deref().map(varz).transpose()?;
    let sightings_before = store.count_sightings(None).await?;

    // The province's camera list.
    let t = Instant::now();
    for i in 0..args.cameras {
        let id = format!("cam-{i:04}");
        let camera = FleetCamera {
            id: id.clone(),
            spec: serde_json::json!({ "url": format!("rtsp://simulated/{id}") }),
            pin: None,
            paused: false,
        };
        admin
            .cameras
            .put(&id, serde_json::to_vec(&camera)?.into())
            .await?;
    }
    println!(
        "fleet: {} cameras put in the fleet's list in {:.2} s",
        args.cameras,
        t.elapsed().as_secs_f64()
    );

    // The workers, all starting at once.
    let counts = Arc::new(Counts::default());
    let clip = Arc::new(
        (0..args.clip_bytes)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let mut joining = Vec::new();
    for w in 0..args.workers {
        let url = args.nats.clone();
        joining.push(tokio::spawn(async move {
            Bus::connect(&url, &format!("sim-worker-{w:03}")).await
        }));
    }
    let mut workers = Vec::new();
    for (w, bus) in joining.into_iter().enumerate() {
        let bus = bus.await??;
        let host = Arc::new(SimHost {
            cameras: Mutex::new(HashMap::new()),
            sighting_every: Duration::from_secs_f64(args.sighting_every.max(0.01)),
            event_every: Duration::from_secs_f64(args.event_every.max(0.01)),
        });
        let evidence = DataDir::new(scratch.join(format!("worker-{w:03}")));
        std::fs::create_dir_all(evidence.evidence())?;
        let sink = BusSink::new(
            bus.clone(),
            tokio::runtime::Handle::current(),
            evidence.evidence(),
        );
        let agent = Agent::start(
            bus,
            AgentSettings::new(&format!("sim-worker-{w:03}"), args.capacity),
            host.clone(),
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let emitter = Emitter {
            host: host.clone(),
            sink,
            evidence,
            key: key.clone(),
            clip: clip.clone(),
            counts: counts.clone(),
            stop: stop.clone(),
            serial: 0,
        };
        let thread = std::thread::Builder::new()
            .name(format!("sim-{w:03}"))
            .spawn(move || emitter.run(w))?;
        workers.push(Worker {
            host,
            agent: Some(agent),
            stop,
            thread: Some(thread),
        });
    }
    println!(
        "fleet: {} workers of capacity {} connected and started in {:.2} s",
        args.workers,
        args.capacity,
        started.elapsed().as_secs_f64()
    );
    let limit = Duration::from_secs(120);
    wait_until(limit, "every camera running once", || {
        exactly_once(&workers, args.cameras)
    })
    .await?;
    let full = started.elapsed();
    let share = args.cameras.div_ceil(args.workers);
    wait_until(limit, "every worker at most its share", || {
        workers.iter().all(|w| w.host.running().len() <= share)
            && exactly_once(&workers, args.cameras)
    })
    .await?;
    println!(
        "fleet: full assignment ({} cameras, each on exactly one worker) {:.2} s after the workers started; balanced (at most {share} a worker) after {:.2} s",
        args.cameras,
        full.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // Steady running: the server's traffic and the intake keeping up.
    let at = |c: &Counts| {
        (
            c.sightings.load(Ordering::Relaxed),
            c.events.load(Ordering::Relaxed),
        )
    };
    let v0 = args.monitor.as_deref().map(varz).transpose()?;
    let (s0, e0) = at(&counts);
    let rows0 = store.count_sightings(None).await?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.steady)).await;
    let secs = t.elapsed().as_secs_f64();
    let v1 = args.monitor.as_deref().map(varz).transpose()?;
    let (s1, e1) = at(&counts);
    let rows1 = store.count_sightings(None).await?;
    println!(
        "fleet: steady {secs:.0} s: {:.0} sightings/s and {:.2} violations/s published (with {} KiB evidence each), {:.0} sightings/s recorded in {backend}",
        (s1 - s0) as f64 / secs,
        (e1 - e0) as f64 / secs,
        args.clip_bytes / 1024,
        (rows1 - rows0) as f64 / secs
    );
    if let (Some(a), Some(b)) = (v0, v1) {
        println!(
            "fleet: NATS server, steady: {:.0} msgs/s in, {:.0} msgs/s out, {:.2} MB/s in, {:.2} MB/s out (heartbeats, lease watches, moves, events, evidence, sightings, acks)",
            (b.in_msgs - a.in_msgs) as f64 / secs,
            (b.out_msgs - a.out_msgs) as f64 / secs,
            (b.in_bytes - a.in_bytes) as f64 / secs / 1e6,
            (b.out_bytes - a.out_bytes) as f64 / secs / 1e6
        );
    }

    // Failover: a share of the workers vanish at once, as killed processes do.
    let killed = (args.workers * args.kill_percent / 100)
        .max(1)
        .min(args.workers - 1);
    let mut lost: HashMap<String, Option<Duration>> = HashMap::new();
    let held_before = counts.held.load(Ordering::Relaxed);
    let kill_at = Instant::now();
    for w in workers.iter_mut().take(killed) {
        for c in w.host.running() {
            lost.insert(c, None);
        }
        if let Some(agent) = w.agent.take() {
            agent.vanish();
        }
        // Its analysis goes on, cut off: what it finds is held by its gates.
    }
    let deadline = Instant::now() + limit;
    while lost.values().any(Option::is_none) {
        if Instant::now() > deadline {
            bail!("failover: cameras still dark after {limit:?}");
        }
        let runs = placement(&workers);
        for (cam, when) in lost.iter_mut() {
            if when.is_none() && runs.contains_key(cam) {
                *when = Some(kill_at.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut times: Vec<Duration> = lost.values().flatten().copied().collect();
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize].as_secs_f64();
    let doubled = placement(&workers).values().filter(|&&n| n > 1).count();
    println!(
        "fleet: failover: {killed} of {} workers vanished at once with {} cameras; each running on another worker after p50 {:.2} s, max {:.2} s; cameras on two live workers: {doubled}; reads held back by the vanished workers' gates: {}",
        args.workers,
        lost.len(),
        pct(0.5),
        pct(1.0),
        counts.held.load(Ordering::Relaxed) - held_before
    );
    if !exactly_once(&workers, args.cameras) {
        bail!("failover: not every camera on exactly one live worker");
    }

    // The workers leave; what they published is taken in.
    for w in &workers {
        w.stop.store(true, Ordering::Relaxed);
    }
    for w in &mut workers {
        if let Some(t) = w.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
    let mut leaving = Vec::new();
    for w in &mut workers {
        if let Some(agent) = w.agent.take() {
            leaving.push(tokio::spawn(agent.stop()));
        }
    }
    for l in leaving {
        l.await?;
    }
    let published = counts.sightings.load(Ordering::Relaxed);
    let deadline = Instant::now() + limit;
    loop {
        let recorded = store.count_sightings(None).await? - sightings_before;
        if recorded >= published {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {recorded} of {published} published sightings recorded after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events_published = counts.events.load(Ordering::Relaxed);
    println!(
        "fleet: whole run: {published} sightings and {events_published} violations published, every sighting recorded once; publishes that failed: {}, reads refused after a takeover: {}",
        counts.failed.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed)
    );
    if let (Some(a), Some(b)) = (
        server_before,
        args.monitor.as_deref().map(varz).transpose()?,
    ) {
        println!(
            "fleet: NATS server, whole run: {} msgs in, {} msgs out, {:.1} MB in, {:.1} MB out",
            b.in_msgs - a.in_msgs,
            b.out_msgs - a.out_msgs,
            (b.in_bytes - a.in_bytes) as f64 / 1e6,
            (b.out_bytes - a.out_bytes) as f64 / 1e6
        );
    }

    // Intake capacity: a backlog built while the case service is away, then taken in.
    consumers.stop().await;
    if args.backlog > 0 {
        backlog(&admin, &store, args.backlog, &backend, bus_intake).await?;
    }
    store.close().await;
    Ok(())
}

/// `n` sightings published while no case service consumes (as many publishes in flight
/// as the server takes), then the time for the case service to take them in.
async fn backlog(
    bus: &Bus,
    store: &vigil_ticketing::CaseStore,
    n: usize,
    backend: &str,
    intake: Arc<BusIntake>,
) -> Result<()> {
    let before = store.count_sightings(None).await?;
    let run = super::uuid_like(std::process::id());
    let t = Instant::now();
    let uploads = futures_util::stream::iter(0..n)
        .map(|i| {
            let js = bus.js.clone();
            async move {
                let s = Sighting {
                    sighting_id: uuid::Uuid::from_u128(run ^ ((i as u128) << 80) ^ i as u128),
                    camera_id: format!("cam-{:04}", i % 1300),
                    plate: super::search::bench_plate(i as u64),
                    confidence: 0.91,
                    vehicle_class: "motorbike".into(),
                    plate_colour: None,
                    seen_at: Utc::now(),
                    source: format!("rtsp://simulated/cam-{:04}", i % 1300),
                    thumbnail: None,
                    video_offset_ms: None,
                };
                let payload = serde_json::to_vec(&vigil_core::sighting::SightingUpload::of(&s))?;
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", s.sighting_id.to_string().as_str());
                js.publish_with_headers(
                    vigil_fleet::bus::SIGHTINGS_SUBJECT,
                    headers,
                    payload.into(),
                )
                .await?
                .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(256);
    let mut uploads = std::pin::pin!(uploads);
    while let Some(r) = uploads.next().await {
        r?;
    }
    let published = t.elapsed().as_secs_f64();
    println!(
        "fleet: backlog: {n} sightings published in {published:.2} s = {:.0}/s (case service away)",
        n as f64 / published
    );
    let t = Instant::now();
    let consumers = Consumers::start(bus.clone(), intake);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let recorded = store.count_sightings(None).await? - before;
        if recorded >= n as u64 {
            break;
        }
        if Instant::now() > deadline {
            bail!("backlog: only {recorded} of {n} recorded after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    consumers.stop().await;
    println!(
        "fleet: backlog: {n} sightings taken from JetStream into {backend} in {secs:.2} s = {:.0} sightings/s (1,000 a transaction, acked after commit)",
        n as f64 / secs
    );
    Ok(())
}

async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            bail!("not within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
