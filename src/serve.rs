//! `vigil serve`, users and the overdue list: the ticketing service at the binary edge.

use super::*;

/// A password from VIGIL_PASSWORD or the first line of stdin, never from the command line
/// (where `ps` and shell history would show it).
pub(crate) fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("VIGIL_PASSWORD") {
        return Ok(p);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("password (at least 12 characters; shown as you type): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub(crate) fn list_overdue(
    runtime: &tokio::runtime::Runtime,
    store: &CaseStore,
    json: bool,
) -> Result<()> {
    let overdue = runtime.block_on(store.overdue(Utc::now()))?;
    let mut out = std::io::stdout().lock();
    if json {
        for o in &overdue {
            writeln!(out, "{}", serde_json::to_string(o)?)?;
        }
        return Ok(());
    }
    if overdue.is_empty() {
        writeln!(out, "no case is past a deadline")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<6} {:<14} {:<17} {:<22} DUE (Asia/Ho_Chi_Minh)",
        "CASE", "PLATE", "STATE", "DEADLINE"
    )?;
    for o in &overdue {
        writeln!(
            out,
            "{:<6} {:<14} {:<17} {:<22} {}",
            o.case_id,
            o.plate.as_deref().unwrap_or("-"),
            o.state,
            o.deadline,
            o.due_at.with_timezone(&TIME_ZONE).format("%Y-%m-%d %H:%M")
        )?;
    }
    Ok(())
}

pub(crate) struct ServeSettings {
    pub(crate) listen: std::net::SocketAddr,
    pub(crate) registry: Option<RegistryClient>,
    pub(crate) webhook: Option<Webhook>,
    pub(crate) agency: Agency,
    pub(crate) fines: FineSchedules,
    pub(crate) work_interval: Duration,
    pub(crate) dedup_window: chrono::Duration,
    pub(crate) secure_cookies: bool,
}

pub(crate) async fn serve(store: CaseStore, settings: ServeSettings) -> Result<()> {
    let mut intake = Intake::new(store, settings.fines);
    intake.dedup_window = settings.dedup_window;
    let state = AppState::new(intake, settings.agency, settings.secure_cookies);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    eprintln!(
        "vigil: serving on http://{} (API description at /api/openapi.json)",
        listener.local_addr()?
    );
    if settings.registry.is_none() {
        eprintln!("vigil: no --registry-url: approved cases wait for owner identification");
    }
    if settings.webhook.is_none() {
        eprintln!("vigil: no --publish-url: publication records wait in the outbox");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let (registry, webhook) = (settings.registry, settings.webhook);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(settings.work_interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => break,
                }
                match work_round(&state, registry.as_ref(), webhook.as_ref()).await {
                    Ok(round) => tracing::info!(?round, "background work"),
                    Err(e) => {
                        tracing::error!(error = %e, "background work failed; retrying next round")
                    }
                }
            }
        })
    };
    let mut stop = stop_rx;
    vigil_ticketing::http::serve(listener, state, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        let _ = stop.changed().await;
    })
    .await?;
    let _ = worker.await;
    eprintln!("vigil: stopped");
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
