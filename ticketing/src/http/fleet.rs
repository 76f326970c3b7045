//! `/api/fleet` and `/metrics`: the fleet as its NATS JetStream says it stands (workers,
//! where each camera runs, the latest moves and why, what waits in the queues), for the
//! fleet page and for Prometheus. A server started without `--nats` has no fleet to show;
//! its `/metrics` still carries the case gauges.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use vigil_fleet::FleetView;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};

/// Moves the fleet page shows.
const MOVES_SHOWN: usize = 50;

async fn read(state: &AppState, moves: usize) -> ApiResult<Option<FleetView>> {
    let Some(bus) = &state.fleet else {
        return Ok(None);
    };
    FleetView::read(bus, moves)
        .await
        .map(Some)
        .map_err(|e| ApiError::Unavailable(format!("the fleet's NATS JetStream: {e}")))
}

pub(super) async fn fleet_view(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<FleetView>> {
    read(&state, MOVES_SHOWN).await?.map(Json).ok_or_else(|| {
        ApiError::NotFound("this server has no fleet: it was started without --nats".into())
    })
}

pub(super) async fn metrics(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Response> {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP vigil_cases Cases by state.");
    let _ = writeln!(out, "# TYPE vigil_cases gauge");
    for (s, n) in state.store.count_by_state().await? {
        let _ = writeln!(out, "vigil_cases{{state=\"{}\"}} {n}", s.as_str());
    }
    let _ = writeln!(
        out,
        "# HELP vigil_outbox_pending Publications not yet delivered, by topic."
    );
    let _ = writeln!(out, "# TYPE vigil_outbox_pending gauge");
    for (topic, n) in state.store.outbox_pending().await? {
        let _ = writeln!(out, "vigil_outbox_pending{{topic=\"{topic}\"}} {n}");
    }
    if let Some(view) = read(&state, 0).await? {
        out.push_str(&view.prometheus());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
