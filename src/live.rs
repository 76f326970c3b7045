//! `vigil run` and `vigil demo --live`: live cameras, their monitoring routes, and the clean stop.

use super::*;
use crate::serve::shutdown_signal;

/// Run live cameras until a signal (or, for the demo, `for_at_most`), then finish the
/// violations waiting for their clips and record them.
pub(crate) fn run_live(
    runtime: &tokio::runtime::Runtime,
    ctx: &BatchContext<'_>,
    deployment: Deployment,
    listen: std::net::SocketAddr,
    metrics_token: Option<String>,
    for_at_most: Option<Duration>,
) -> Result<()> {
    if !listen.ip().is_loopback() && metrics_token.is_none() {
        bail!(
            "--listen {listen} is beyond this machine: set --metrics-token (or VIGIL_METRICS_TOKEN)"
        );
    }
    std::fs::create_dir_all(ctx.data)
        .with_context(|| format!("cannot create data folder {}", ctx.data.display()))?;
    let fines = FineSchedules::load_dir(ctx.fines_dir)?;
    let intake = Intake::new(runtime.block_on(open_store(ctx.data, ctx.database))?, fines);
    let key = std::sync::Arc::new(EvidenceKey::load_or_create(&ctx.data.join("keys"))?);
    let handle = runtime.handle().clone();
    let sink_intake = intake.clone();
    let (sighting_handle, sighting_store) = (handle.clone(), intake.store.clone());
    let cameras: Vec<String> = deployment
        .cameras
        .iter()
        .map(|c| c.config.id.clone())
        .collect();
    let runner = std::sync::Arc::new(LiveRunner::start(
        deployment,
        RunnerSettings {
            evidence_root: ctx.data.join("evidence"),
            models_path: ctx.models_path.to_owned(),
            key,
            sink: std::sync::Arc::new(move |event| {
                match handle.block_on(sink_intake.record(&event)) {
                    Ok(r) => {
                        eprintln!(
                            "vigil: {} {} at {}: case {}",
                            event.violation.as_str(),
                            event
                                .plate
                                .as_ref()
                                .map(|p| p.text.as_str())
                                .unwrap_or("(no plate)"),
                            event.camera_id,
                            r.case_id()
                        );
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }),
            sightings: std::sync::Arc::new(move |sighting| {
                sighting_handle
                    .block_on(sighting_store.record_sighting(&sighting))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        },
    )?);
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
    let configs: Vec<vigil_pipeline::config::CameraConfig> = runner.configs();
    let reporter = HealthReporter {
        runner: runner.clone(),
        store: intake.store.clone(),
        pictures: ctx.data.join("cameras"),
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
                        _ = shutdown_signal() => {}
                    }
                }
                None => shutdown_signal().await,
            }
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    })?;
    eprintln!("vigil: stopping: finishing the clips in progress");
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
    runtime.block_on(intake.store.close());
    eprintln!("vigil: stopped");
    Ok(())
}

/// How often each camera's health goes to the database for the cameras page.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// How long stopping waits to write the cameras' last health.
const HEALTH_AT_STOP: Duration = Duration::from_secs(5);

struct HealthReporter {
    runner: std::sync::Arc<LiveRunner>,
    store: CaseStore,
    pictures: PathBuf,
    configs: Vec<vigil_pipeline::config::CameraConfig>,
}

impl HealthReporter {
    /// One report per camera; `last` keeps (frames, when) from the previous report for
    /// the frame rate. A camera whose report cannot be written is logged, not fatal:
    /// the cameras keep running.
    async fn report(
        &self,
        last: &mut std::collections::HashMap<String, (u64, std::time::Instant)>,
    ) {
        let now = Utc::now();
        let instant_now = std::time::Instant::now();
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
                vigil_pipeline::live::camera::CameraState::Failed(r) => ("failed", Some(r.clone())),
                other => (other.name(), None),
            };
            let frame = self.runner.latest_frame(&status.id);
            let health = vigil_ticketing::cameras::CameraHealth {
                fps_in,
                frames_in: status.frames_in,
                frames_dropped: status.frames_dropped,
                reconnects: status.reconnects,
                last_frame_at: status.last_frame.map(|t| {
                    now - chrono::Duration::from_std(instant_now.saturating_duration_since(t))
                        .unwrap_or_default()
                }),
                ..camera_health(config, state, reason, frame.as_deref(), &self.pictures, now)
            };
            if let Err(e) = self.store.report_camera(&health).await {
                tracing::warn!(camera = %status.id, error = %e, "camera health not recorded");
            }
        }
    }
}

/// A camera's health with what its config says (name, place) and a picture of its last
/// frame saved beside the others; counters zero, for the caller to fill. A picture that
/// cannot be saved is logged, not fatal: the report still goes.
pub(crate) fn camera_health(
    config: &vigil_pipeline::config::CameraConfig,
    state: &str,
    reason: Option<String>,
    frame: Option<&image::RgbImage>,
    pictures: &Path,
    now: DateTime<Utc>,
) -> vigil_ticketing::cameras::CameraHealth {
    let thumbnail = frame.and_then(|frame| match save_picture(pictures, &config.id, frame) {
        Ok(path) => Some(path.display().to_string()),
        Err(e) => {
            tracing::warn!(camera = %config.id, error = %e, "camera picture not saved");
            None
        }
    });
    vigil_ticketing::cameras::CameraHealth {
        camera_id: config.id.clone(),
        name: config.name.clone(),
        location: config.location.clone(),
        latitude: config.position.map(|p| p.lat),
        longitude: config.position.map(|p| p.lon),
        state: state.to_string(),
        reason,
        fps_in: 0.0,
        frames_in: 0,
        frames_dropped: 0,
        reconnects: 0,
        last_frame_at: None,
        thumbnail,
        reported_at: now,
    }
}

/// A small picture of a camera's last frame, replaced whole (written aside, then renamed)
/// so the page never reads half of one.
pub(crate) fn save_picture(dir: &Path, camera: &str, frame: &image::RgbImage) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (w, h) = frame.dimensions();
    let width = w.min(320);
    let height = ((h as u64 * width as u64) / w.max(1) as u64).max(1) as u32;
    let small = image::imageops::thumbnail(frame, width, height);
    let path = dir.join(format!("{}.jpg", sanitize(camera)));
    let partial = dir.join(format!(".{}.jpg.partial", sanitize(camera)));
    small
        .save_with_format(&partial, image::ImageFormat::Jpeg)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Camera ids come from configuration; a file name made of one keeps to safe characters.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn monitoring_routes(
    runner: std::sync::Arc<LiveRunner>,
    token: Option<String>,
) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    let token = std::sync::Arc::new(token);
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
                        vigil_pipeline::live::camera::CameraState::Failed(reason) => {
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

/// Two looping RTSP cameras made of the fixtures, analysed live for `seconds`.
pub(crate) fn demo_live(
    runtime: &tokio::runtime::Runtime,
    ctx: &BatchContext<'_>,
    seconds: u64,
) -> Result<()> {
    let fixtures = Path::new(CHECKOUT).join("fixtures");
    let mut mounts = Vec::new();
    for (path, file) in [
        ("/junction-a", "redlight_a.mp4"),
        ("/junction-b", "redlight_b.mp4"),
    ] {
        let file = fixtures.join("generated").join(file);
        if !file.is_file() {
            bail!(
                "fixture {} is missing; run scripts/setup (or scripts/demo)",
                file.display()
            );
        }
        mounts.push(Mount::Video {
            path: path.into(),
            file,
            credentials: None,
        });
    }
    let server = TestRtspServer::start(mounts, 0)?;
    std::fs::create_dir_all(ctx.data)?;
    let deployment_path = ctx.data.join("demo-live.toml");
    let camera = fixtures.join("cameras/junction-demo.toml");
    std::fs::write(
        &deployment_path,
        format!(
            "# Written by `vigil demo --live`: the fixtures as two RTSP cameras on 127.0.0.1.\n\
             [[camera]]\nconfig = \"{cam}\"\nid = \"bn-live-a\"\nurl = \"{a}\"\n\n\
             [[camera]]\nconfig = \"{cam}\"\nid = \"bn-live-b\"\nurl = \"{b}\"\n",
            cam = camera.display(),
            a = server.url("/junction-a"),
            b = server.url("/junction-b"),
        ),
    )?;
    eprintln!(
        "vigil: RTSP test server on 127.0.0.1:{}; analysing for {seconds} s",
        server.port()
    );
    let deployment = Deployment::load(&deployment_path)?;
    run_live(
        runtime,
        ctx,
        deployment,
        "127.0.0.1:0".parse()?,
        None,
        Some(Duration::from_secs(seconds)),
    )?;
    drop(server);
    println!();
    list_cases(runtime, ctx.data, ctx.database, false)
}
