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
    // The workers record through the runtime (its own threads drive the database), so
    // this thread may wait for them.
    runner.shutdown();
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
