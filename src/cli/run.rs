//! `vigil run`: live cameras, their monitoring routes (`/metrics`, `/healthz`), their
//! health for the cameras page, and the clean stop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use vigil_core::{EventSink, Recorded, Sighting, SinkError, SystemClock, ViolationEvent};
use vigil_fleet::{Agent, AgentSettings, Bus, BusSink, CameraHost, FleetCamera, Gate};
use vigil_pipeline::CameraConfig;
use vigil_pipeline::output::http_sink::HttpSink;
use vigil_pipeline::run::live::deployment::{Deployment, FleetSpec, RunSection};
use vigil_pipeline::run::live::{LiveRunner, RunnerSettings, is_streaming};
use vigil_pipeline::source::rtsp::CameraState;
use vigil_ticketing::CaseStore;
use vigil_ticketing::cameras::CameraHealth;
use vigil_ticketing::intake::IntakeSink;

use super::Context;
use super::batch::ServiceArgs;
use super::health::camera_health;
use super::serve::shutdown_signal;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Deployment file: [run] settings and one [[camera]] per camera. With --fleet, its
    /// [run] settings only (optional): the cameras come from the fleet.
    #[arg(long, required_unless_present = "fleet")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Address of /metrics (Prometheus) and /healthz.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: std::net::SocketAddr,
    /// Bearer token /metrics and /healthz require; needed to listen beyond loopback.
    #[arg(long, env = "VIGIL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// Joining a fleet: cameras from its list, records through its streams.
#[derive(clap::Args, Clone)]
pub struct FleetArgs {
    /// The fleet's NATS JetStream (nats://host:4222).
    #[arg(
        long = "fleet",
        id = "fleet",
        value_name = "NATS_URL",
        env = "VIGIL_NATS_URL"
    )]
    pub url: Option<String>,
    /// This worker's name in the fleet: unique, stable across restarts.
    #[arg(long, env = "VIGIL_WORKER", requires = "fleet")]
    pub worker: Option<String>,
    /// Cameras this worker can run.
    #[arg(long, default_value_t = 8, requires = "fleet")]
    pub capacity: u32,
}

/// Where a live run's cameras and records come from.
pub enum Cameras {
    /// A deployment's cameras; cases to the database here, or to `vigil serve`.
    Deployment(Deployment, Option<HttpSink>),
    /// A fleet's cameras, as its agent assigns them; records through its streams.
    Fleet {
        run: RunSection,
        bus: Bus,
        settings: AgentSettings,
    },
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<()> {
    let cameras = match &args.fleet.url {
        Some(url) => {
            let run = match &args.config {
                Some(path) => Deployment::load_settings(path)?,
                None => RunSection::default(),
            };
            let worker = match &args.fleet.worker {
                Some(w) => w.clone(),
                None => bail!(
                    "--fleet needs --worker NAME (or VIGIL_WORKER): unique and stable across restarts"
                ),
            };
            let bus = ctx
                .runtime
                .block_on(Bus::connect(url, &format!("vigil run {worker}")))?;
            Cameras::Fleet {
                run,
                bus,
                settings: AgentSettings::new(&worker, args.fleet.capacity),
            }
        }
        None => {
            let Some(path) = &args.config else {
                bail!("--config DEPLOYMENT is needed without --fleet");
            };
            let deployment = Deployment::load(path)?;
            Cameras::Deployment(deployment, args.service.sink(&ctx.data)?)
        }
    };
    run_live(ctx, cameras, args.listen, args.metrics_token, None)
}

/// A fleet's agent runs cameras on the live runner.
struct FleetHost {
    runner: Arc<LiveRunner>,
    run: RunSection,
    capacity: u32,
}

impl CameraHost for FleetHost {
    fn start(&self, camera: &FleetCamera, gate: Gate) -> Result<(), String> {
        let spec: FleetSpec = serde_json::from_value(camera.spec.clone())
            .map_err(|e| format!("its entry in the fleet's list: {e}"))?;
        let live = spec.camera(&camera.id, &self.run)?;
        self.runner
            .add_camera(&live, Arc::new(gate))
            .map_err(|e| e.to_string())
    }

    fn stop(&self, camera: &str) {
        let patience = self.run.clip_window().after + Duration::from_secs(10);
        self.runner.remove_camera(camera, patience);
    }

    fn load(&self) -> f32 {
        self.runner.configs().len() as f32 / self.capacity.max(1) as f32
    }
}

/// Prints each case as it is recorded, in-process.
struct Announcing(IntakeSink);

impl EventSink for Announcing {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError> {
        let r = self.0.record_event(event)?;
        eprintln!(
            "vigil: {} {} at {}: case {:?}",
            event.violation.as_str(),
            event
                .plate
                .as_ref()
                .map(|p| p.text.as_str())
                .unwrap_or("(no plate)"),
            event.camera_id,
            r.case_id()
        );
        Ok(r)
    }

    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError> {
        self.0.record_sighting(sighting)
    }
}

/// Run live cameras until a signal (or, for the demo, `for_at_most`), then finish the
/// violations waiting for their clips and record them. Cases go to `service` when given
/// (`vigil serve` elsewhere), else to the database here.
pub fn run_live(
    ctx: &Context,
    cameras: Cameras,
    listen: std::net::SocketAddr,
    metrics_token: Option<String>,
    for_at_most: Option<Duration>,
) -> Result<()> {
    let runtime = &ctx.runtime;
    let signalled = {
        let _in_runtime = runtime.enter();
        shutdown_signal()
    };
    if !listen.ip().is_loopback() && metrics_token.is_none() {
        bail!(
            "--listen {listen} is beyond this machine: set --metrics-token (or VIGIL_METRICS_TOKEN)"
        );
    }
    let (deployment, service, fleet) = match cameras {
        Cameras::Deployment(d, service) => (d, service, None),
        Cameras::Fleet { run, bus, settings } => {
            (Deployment::empty(run), None, Some((bus, settings)))
        }
    };
    let fleet_run = deployment.run.clone();
    // The local store, when cases are recorded here: it also keeps the cameras' health.
    let (sink, store): (Arc<dyn EventSink>, Option<CaseStore>) = match (service, &fleet) {
        (_, Some((bus, _))) => (
            Arc::new(BusSink::new(
                bus.clone(),
                runtime.handle().clone(),
                ctx.data.evidence(),
            )),
            None,
        ),
        (Some(http), None) => (Arc::new(http), None),
        (None, None) => {
            let intake = ctx.intake()?;
            let store = intake.store.clone();
            let sink = Announcing(IntakeSink {
                intake,
                runtime: runtime.handle().clone(),
            });
            (Arc::new(sink), Some(store))
        }
    };
    let cameras: Vec<String> = deployment
        .cameras
        .iter()
        .map(|c| c.config.id.clone())
        .collect();
    let runner = Arc::new(LiveRunner::start(
        deployment,
        RunnerSettings {
            data: ctx.data.clone(),
            models_path: ctx.models.clone(),
            key: ctx.key()?,
            sink,
            clock: Arc::new(SystemClock),
            any_camera: fleet.is_some(),
        },
    )?);
    let agent = match fleet {
        Some((bus, settings)) => {
            let _in_runtime = runtime.enter();
            let capacity = settings.capacity;
            eprintln!(
                "vigil: worker {} joins the fleet (capacity {capacity} cameras)",
                settings.worker
            );
            Some(Agent::start(
                bus,
                settings,
                Arc::new(FleetHost {
                    runner: runner.clone(),
                    run: fleet_run,
                    capacity,
                }),
            )?)
        }
        None => None,
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "vigil: {} camera(s): {}; metrics on http://{}/metrics",
        cameras.len(),
        cameras.join(", "),
        listener.local_addr()?
    );
    let app = monitoring_routes(runner.clone(), metrics_token);
    let configs: Vec<CameraConfig> = runner.configs();
    let reporter = HealthReporter {
        runner: runner.clone(),
        store: store.clone(),
        data: ctx.data.clone(),
        configs,
    };
    let (report_stop, mut report_stopped) = tokio::sync::watch::channel(false);
    let report_task = runtime.spawn(async move {
        let mut last = std::collections::HashMap::new();
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => reporter.report(&mut last).await,
                _ = report_stopped.changed() => break,
            }
        }
        reporter
    });
    runtime.block_on(async move {
        let stop = async move {
            match for_at_most {
                Some(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = signalled => {}
                    }
                }
                None => signalled.await,
            }
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    })?;
    eprintln!("vigil: stopping: finishing the clips in progress");
    if let Some(agent) = agent {
        // Its cameras given back (each finishing its clips) before the runner stops, so
        // the other workers take them at once.
        runtime.block_on(agent.stop());
    }
    // The recorder records through the runtime (its own threads drive the database), so
    // this thread may wait for it.
    runner.shutdown();
    let _ = report_stop.send(true);
    // Health is the cameras page's view, not a record: with the database down each write
    // would wait out the pool's timeout, so stopping waits only so long for it.
    let reported = runtime.block_on(async {
        let reporter = tokio::time::timeout(HEALTH_AT_STOP, report_task)
            .await
            .ok()?
            .ok()?;
        // The page shows them stopped, not frozen in their last state.
        tokio::time::timeout(
            HEALTH_AT_STOP,
            reporter.report(&mut std::collections::HashMap::new()),
        )
        .await
        .ok()
    });
    if reported.is_none() {
        tracing::warn!("the cameras' stopped state could not be written (database slow or down)");
    }
    for s in runner.statuses() {
        eprintln!(
            "vigil: {}: {} frames, {} dropped, {} reconnects",
            s.id, s.frames_in, s.frames_dropped, s.reconnects
        );
    }
    if let Some(store) = store {
        runtime.block_on(store.close());
    }
    eprintln!("vigil: stopped");
    Ok(())
}

/// How often each camera's health goes to the database for the cameras page.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How long stopping waits to write the cameras' last health.
const HEALTH_AT_STOP: Duration = Duration::from_secs(5);

struct HealthReporter {
    runner: Arc<LiveRunner>,
    /// None when this worker records through a service (it has no database here).
    store: Option<CaseStore>,
    data: vigil_core::DataDir,
    configs: Vec<CameraConfig>,
}

impl HealthReporter {
    /// One report per camera; `last` keeps (frames, when) from the previous report for
    /// the frame rate. A camera whose report cannot be written is logged, not fatal:
    /// the cameras keep running.
    async fn report(&self, last: &mut HashMap<String, (u64, Instant)>) {
        let Some(store) = &self.store else {
            return;
        };
        let now = Utc::now();
        let instant_now = Instant::now();
        for status in self.runner.statuses() {
            let Some(config) = self.configs.iter().find(|c| c.id == status.id) else {
                continue;
            };
            let fps_in = match last.insert(status.id.clone(), (status.frames_in, instant_now)) {
                Some((frames, at)) if instant_now > at => {
                    (status.frames_in.saturating_sub(frames)) as f64
                        / (instant_now - at).as_secs_f64()
                }
                _ => 0.0,
            };
            let (state, reason) = match &status.state {
                CameraState::Failed(r) => ("failed", Some(r.clone())),
                other => (other.name(), None),
            };
            let frame = self.runner.latest_frame(&status.id);
            let health = CameraHealth {
                fps_in,
                frames_in: status.frames_in,
                frames_dropped: status.frames_dropped,
                reconnects: status.reconnects,
                last_frame_at: status
                    .last_frame_age
                    .map(|age| now - chrono::Duration::from_std(age).unwrap_or_default()),
                ..camera_health(config, state, reason, frame.as_deref(), &self.data, now)
            };
            if let Err(e) = store.report_camera(&health).await {
                tracing::warn!(camera = %status.id, error = %e, "camera health not recorded");
            }
        }
    }
}

fn monitoring_routes(runner: Arc<LiveRunner>, token: Option<String>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    let token = Arc::new(token);
    let allowed = move |headers: &HeaderMap, token: &Option<String>| match token {
        None => true,
        Some(t) => {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                == Some(t.as_str())
        }
    };
    let (r1, r2, t1, t2) = (runner.clone(), runner, token.clone(), token);
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| async move {
                if !allowed(&headers, &t1) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        String::from("bearer token required\n"),
                    );
                }
                (StatusCode::OK, r1.metrics_text())
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(move |headers: HeaderMap| async move {
                if !allowed(&headers, &t2) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        String::from("bearer token required\n"),
                    );
                }
                let statuses = r2.statuses();
                let body = statuses
                    .iter()
                    .map(|s| match &s.state {
                        CameraState::Failed(reason) => {
                            format!("{} failed: {reason}\n", s.id)
                        }
                        other => format!("{} {}\n", s.id, other.name()),
                    })
                    .collect::<String>();
                let code = if statuses.iter().all(is_streaming) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (code, body)
            }),
        )
}
