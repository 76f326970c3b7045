//! `/api/sightings`: every plate read, searched forgivingly (JSON or CSV), each with its
//! picture and footage; and the intake of sightings from workers on other machines
//! (`POST`), whose pictures arrive as bytes and are kept in the service's own data folder.

use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_core::local_time::TIME_ZONE;
use vigil_core::sighting::SightingUpload;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiResult};
use super::evidence::{send_file, send_picture};
use crate::db::{CaseFilter, fold_plate};
use crate::sightings::{Found, PictureError, Sighting, SightingQuery, keep_picture};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SightingSearch {
    pub plate: String,
    pub camera: Option<String>,
    pub class: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

pub(super) async fn search_sightings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<SightingSearch>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Found>>> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(audited_search(&state, &caller, &q, "json").await?))
}

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
async fn audited_search(
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
            // What was typed, at most 40 characters of it: a hostile query must not fill
            // the append-only log.
            Some(crate::sightings::shown(&q.plate)),
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
                .with_timezone(&TIME_ZONE)
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
    // Only letters and digits of the query name the file: a quote or a control character
    // in it broke the header (or the answer, 500).
    let plate: String = fold_plate(&q.plate)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    let name = format!("attachment; filename=\"sightings-{plate}.csv\"");
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
    /// `clip`, `recording`, `footage` (the camera's continuous recording) or `none`.
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
    if let Some(case) = same_vehicle
        && let Ok(event) = case.event_id.parse()
    {
        let evidence = state.intake.evidence.clone();
        let manifest = tokio::task::spawn_blocking(move || evidence.manifest(event))
            .await
            .ok()
            .and_then(Result::ok);
        // The clip's own start in the source, from its manifest; the sighting's offset is
        // in the same source's time.
        if let Some(m) = manifest
            && let Some(clip) = m.clip.as_ref().filter(|c| m.lists(&c.file))
        {
            let at = s
                .video_offset_ms
                .or(m.time.as_ref().map(|t| t.video_offset_ms));
            let offset_s = match at {
                Some(at) => at.saturating_sub(clip.video_offset_ms) as f64 / 1000.0,
                None => 0.0,
            };
            return Ok(Footage {
                kind: "clip".into(),
                url: Some(format!("/api/evidence/{}/{}", case.event_id, clip.file)),
                offset_s,
                case_id: Some(case.id),
                reason: None,
            });
        }
    }
    let recording = servable_recording(state, id).await?;
    if let Some(at) = s.video_offset_ms
        && recording.is_some()
    {
        return Ok(Footage {
            kind: "recording".into(),
            url: Some(format!("/api/sightings/{id}/video")),
            offset_s: at as f64 / 1000.0,
            case_id: None,
            reason: None,
        });
    }
    if let Some((_, offset)) = recorded_footage(state, s).await? {
        return Ok(Footage {
            kind: "footage".into(),
            url: Some(format!("/api/sightings/{id}/recorded")),
            offset_s: offset.as_secs_f64(),
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
            "read from a live stream whose camera is not recorded here (or its footage is \
             gone): only violations keep their video"
                .into()
        } else {
            // The recording's path is the server's business, not the reader's.
            "its recording is not on this server".into()
        }),
    })
}

pub(super) async fn sighting_video(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let s = sighting_or_404(&state, id).await?;
    match servable_recording(&state, id).await? {
        Some(path) if s.video_offset_ms.is_some() => send_file(path, &headers).await,
        _ => Err(ApiError::NotFound(format!(
            "sighting {id} has no recording on this server"
        ))),
    }
}

/// The segment of the sighting's camera's continuous recording, on this server, that
/// holds the moment it was seen, and where in it. Found from the camera and the time
/// alone, inside the data folder's footage: nothing a client sends names a file.
async fn recorded_footage(
    state: &AppState,
    s: &Sighting,
) -> ApiResult<Option<(PathBuf, std::time::Duration)>> {
    // The server's data folder (with where its footage is, shared or not).
    let data = match &state.uploads {
        Some(d) => d.clone(),
        None => match state.intake.evidence.root().parent() {
            Some(p) => vigil_core::DataDir::new(p),
            None => return Ok(None),
        },
    };
    let (camera, at) = (s.camera_id.clone(), s.seen_at);
    tokio::task::spawn_blocking(move || {
        let dir = data.camera_footage(&camera);
        match vigil_core::footage::segment_at(&dir, at) {
            Ok(found) => found.map(|(segment, offset)| (segment.path, offset)),
            Err(e) => {
                tracing::warn!(error = %e, "footage folder not readable");
                None
            }
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

pub(super) async fn sighting_recorded(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let s = sighting_or_404(&state, id).await?;
    match recorded_footage(&state, &s).await? {
        Some((path, _)) => send_file(path, &headers).await,
        None => Err(ApiError::NotFound(format!(
            "sighting {id}'s camera has no footage of that moment on this server"
        ))),
    }
}

/// The recording sighting `id`'s video may be served from: only the one this machine's
/// own pipeline decoded and recorded with it ([`crate::db::CaseStore::record_sighting_from`]), never
/// the `source` a client sent. Defence in depth besides: it must still be a video file
/// and lie outside the service's own data folder (its database, keys and secrets).
async fn servable_recording(state: &AppState, id: i64) -> ApiResult<Option<PathBuf>> {
    let Some(path) = state.store.sighting_recording(id).await? else {
        return Ok(None);
    };
    let data = state.intake.evidence.root().parent().map(|p| p.to_owned());
    let checked = tokio::task::spawn_blocking(move || {
        let real = path.canonicalize().ok()?;
        let inside_data = data
            .and_then(|d| d.canonicalize().ok())
            .is_some_and(|d| real.starts_with(d));
        (!inside_data && real.is_file() && looks_like_video(&real)).then_some(real)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    if checked.is_none() {
        tracing::warn!(
            sighting = id,
            "its recording is gone or not a video; not served"
        );
    }
    Ok(checked)
}

/// Whether a file starts as the containers the pipeline decodes do: ISO BMFF (MP4, MOV),
/// Matroska / WebM, MPEG-TS, AVI or FLV.
fn looks_like_video(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 189];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    (n >= 8 && &head[4..8] == b"ftyp")
        || head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        || (n >= 189 && head[0] == 0x47 && head[188] == 0x47)
        || (n >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"AVI ")
        || head.starts_with(b"FLV")
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SightingRecorded {
    /// False when the sighting was recorded before (its id is derived from what it saw).
    pub recorded: bool,
}

/// A worker's sighting: the record (any path in it ignored) and its picture's bytes,
/// written where this service keeps pictures (never where a client says).
pub(super) async fn intake_sighting(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(upload): ApiJson<SightingUpload>,
) -> ApiResult<(StatusCode, Json<SightingRecorded>)> {
    let mut sighting = upload.sighting;
    sighting.check().map_err(ApiError::BadRequest)?;
    sighting.thumbnail = match (upload.picture_jpeg_base64, &state.uploads) {
        (Some(b64), Some(data)) => Some(keep_picture(data, &sighting, &b64).await.map_err(
            |e| match e {
                PictureError::Invalid(m) => ApiError::BadRequest(m),
                PictureError::Io(m) => ApiError::Internal(m),
            },
        )?),
        _ => None,
    };
    let recorded = state.store.record_sighting(&sighting).await?;
    tracing::debug!(sighting = %sighting.sighting_id, by = %caller.user.username, recorded, "sighting received");
    let status = if recorded {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SightingRecorded { recorded })))
}
