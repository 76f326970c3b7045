//! What investigators and the cameras page read beyond cases: a sighting's picture and
//! footage, search results as CSV, and each camera's last reported health.

use super::*;
use crate::cameras::CameraHealth;
use crate::sightings::{Found, Sighting, SightingQuery};
use crate::store::fold_plate;

/// How far from a sighting a case's clip may start and still be its footage.
const CLIP_WINDOW_S: i64 = 15;

fn sighting_query(q: &SightingSearch) -> SightingQuery {
    SightingQuery {
        plate: q.plate.clone(),
        camera_id: q.camera.clone().filter(|c| !c.is_empty()),
        vehicle_class: q.class.clone().filter(|c| !c.is_empty()),
        from: q.from,
        to: q.to,
        limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
    }
}

/// The search, audited whether it worked or not.
pub(super) async fn audited_search(
    state: &AppState,
    caller: &Caller,
    q: &SightingSearch,
    format: &str,
) -> ApiResult<Vec<Found>> {
    let found = state.store.search_sightings(&sighting_query(q)).await;
    state
        .audit(
            caller,
            "plate_search",
            Some(q.plate.clone()),
            Some(json!({
                "over": "sightings", "camera": q.camera, "class": q.class, "from": q.from,
                "to": q.to, "results": found.as_ref().map(|f| f.len()).ok(), "format": format,
            })),
        )
        .await?;
    Ok(found?)
}

pub(super) async fn sightings_csv(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<SightingSearch>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let found = audited_search(&state, &caller, &q, "csv").await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "score",
        "plate",
        "seen_at_utc",
        "seen_at_local",
        "camera",
        "vehicle_class",
        "plate_colour",
        "confidence",
        "source",
        "sighting_id",
    ];
    let write_err = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
    out.write_record(header).map_err(write_err)?;
    for f in &found {
        let s = &f.sighting;
        out.write_record([
            format!("{:.3}", f.score),
            cell(&s.plate),
            s.seen_at.to_rfc3339(),
            s.seen_at
                .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            cell(&s.camera_id),
            cell(&s.vehicle_class),
            s.plate_colour
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
            format!("{:.3}", s.confidence),
            cell(&s.source),
            s.sighting_id.to_string(),
        ])
        .map_err(write_err)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
    let name = format!(
        "attachment; filename=\"sightings-{}.csv\"",
        fold_plate(&q.plate)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// A spreadsheet runs a cell that starts like a formula: such text is kept as text.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// A picture the database names, if it is still on disk.
async fn send_picture(
    path: Option<String>,
    headers: &HeaderMap,
    missing: impl FnOnce() -> String,
) -> ApiResult<Response> {
    let path = path
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .ok_or_else(|| ApiError::NotFound(missing()))?;
    send_file(path, headers).await
}

async fn sighting_or_404(state: &AppState, id: i64) -> ApiResult<Sighting> {
    state
        .store
        .sighting(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no sighting {id}")))
}

pub(super) async fn sighting_thumbnail(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let s = sighting_or_404(&state, id).await?;
    send_picture(s.thumbnail, &headers, || {
        format!("sighting {id} kept no picture")
    })
    .await
}

/// Where a sighting's video is: the clip of a case made at that camera and moment, or the
/// recording it was read from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Footage {
    /// `clip`, `recording` or `none`.
    pub kind: String,
    pub url: Option<String>,
    /// Where in that video the sighting is, in seconds.
    pub offset_s: f64,
    pub case_id: Option<i64>,
    /// Why there is none.
    pub reason: Option<String>,
}

pub(super) async fn sighting_footage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Footage>> {
    let s = sighting_or_404(&state, id).await?;
    let footage = footage_of(&state, &s, id).await?;
    state
        .audit(
            &caller,
            "footage_view",
            Some(format!("sighting {id}")),
            Some(json!({"plate": s.plate, "camera": s.camera_id, "kind": footage.kind})),
        )
        .await?;
    Ok(Json(footage))
}

async fn footage_of(state: &AppState, s: &Sighting, id: i64) -> ApiResult<Footage> {
    let window = chrono::Duration::seconds(CLIP_WINDOW_S);
    let cases = state
        .store
        .list_filtered(&CaseFilter {
            camera_id: Some(s.camera_id.clone()),
            from: Some(s.seen_at - window),
            to: Some(s.seen_at + window),
            limit: Some(50),
            ..Default::default()
        })
        .await?;
    let key = fold_plate(&s.plate);
    let same_vehicle = cases
        .iter()
        .filter(|c| c.plate.as_deref().map(fold_plate) == Some(key.clone()))
        .min_by_key(|c| (c.occurred_at - s.seen_at).num_milliseconds().abs());
    if let Some(case) = same_vehicle {
        let dir = PathBuf::from(&case.evidence_dir);
        if dir.join("clip.mp4").is_file() {
            let manifest: Option<serde_json::Value> = std::fs::read(dir.join("manifest.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            // The clip's own start in the source, from its manifest; the sighting's offset
            // is in the same source's time.
            let clip_start = manifest
                .as_ref()
                .and_then(|m| m["clip"]["video_offset_ms"].as_u64());
            let occurred = manifest
                .as_ref()
                .and_then(|m| m["time"]["video_offset_ms"].as_u64());
            let at = s.video_offset_ms.or(occurred);
            let offset_s = match (at, clip_start) {
                (Some(at), Some(start)) => at.saturating_sub(start) as f64 / 1000.0,
                _ => 0.0,
            };
            return Ok(Footage {
                kind: "clip".into(),
                url: Some(format!("/api/evidence/{}/clip.mp4", case.event_id)),
                offset_s,
                case_id: Some(case.id),
                reason: None,
            });
        }
    }
    if let Some(at) = s.video_offset_ms
        && std::path::Path::new(&s.source).is_file()
    {
        return Ok(Footage {
            kind: "recording".into(),
            url: Some(format!("/api/sightings/{id}/video")),
            offset_s: at as f64 / 1000.0,
            case_id: None,
            reason: None,
        });
    }
    Ok(Footage {
        kind: "none".into(),
        url: None,
        offset_s: 0.0,
        case_id: None,
        reason: Some(if s.video_offset_ms.is_none() {
            "read from a live stream: only violations keep their video (the ring buffer holds \
             the last seconds)"
                .into()
        } else {
            format!("the recording {} is no longer on this server", s.source)
        }),
    })
}

pub(super) async fn sighting_video(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Only recordings a sighting names (written by our own pipeline), never a path asked for.
    let s = sighting_or_404(&state, id).await?;
    let path = PathBuf::from(&s.source);
    if s.video_offset_ms.is_none() || !path.is_file() {
        return Err(ApiError::NotFound(format!(
            "sighting {id} has no recording on this server"
        )));
    }
    send_file(path, &headers).await
}

pub(super) async fn list_cameras(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> ApiResult<Json<Vec<CameraHealth>>> {
    Ok(Json(state.store.cameras().await?))
}

pub(super) async fn camera_thumbnail(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let camera = state
        .store
        .camera(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no camera {id} has reported")))?;
    send_picture(camera.thumbnail, &headers, || {
        format!("camera {id} has no picture yet")
    })
    .await
}
