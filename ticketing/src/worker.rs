//! The background work of `vigil serve`, one round at a time: owners looked up in the
//! vehicle registry, notices issued, publication records delivered, deadlines swept.

use serde::Serialize;

use crate::db::StoreError;
use crate::http::AppState;
use crate::notice::Webhook;
use crate::owner::RegistryClient;

/// The background work of the service, one round: owners, notices, publication, deadlines.
pub async fn work_round(
    state: &AppState,
    registry: Option<&RegistryClient>,
    webhook: Option<&Webhook>,
) -> Result<WorkRound, StoreError> {
    let now = state.clock.now();
    let owners = match registry {
        Some(r) => Some(state.store.identify_owners(r, now).await?),
        None => None,
    };
    let notices = state.store.issue_notices(&state.agency, now).await?;
    let published = match webhook {
        Some(w) => state.store.publish_outbox(w, now).await?,
        None => 0,
    };
    let sweep = state.store.sweep_deadlines(now).await?;
    // Uploads whose event never came (a worker that died between the two) are dropped
    // after a day: the worker re-sends the package with its event when it recovers.
    let evidence = state.intake.evidence.clone();
    let dropped = tokio::task::spawn_blocking(move || {
        evidence.forget_stale_uploads(std::time::Duration::from_secs(86_400))
    })
    .await
    .unwrap_or(0);
    if dropped > 0 {
        tracing::info!(dropped, "stale evidence uploads dropped");
    }
    Ok(WorkRound {
        owners,
        notices,
        published,
        sweep,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkRound {
    pub owners: Option<crate::owner::OwnerRound>,
    pub notices: Vec<String>,
    pub published: usize,
    pub sweep: crate::deadlines::Sweep,
}
