//! The last reported health of each camera, for the cameras page. Whoever runs a camera
//! (the live runner, a worker machine, a batch run over its recordings) reports it here;
//! the web service only reads it, so it needs no connection to the cameras.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CameraHealth {
    pub camera_id: String,
    pub name: String,
    pub location: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// connecting, streaming, stalled, failed, or recorded (a batch run over a file).
    pub state: String,
    /// Why a camera is not streaming.
    pub reason: Option<String>,
    /// Frames per second arriving, over the last report's interval.
    pub fps_in: f64,
    pub frames_in: u64,
    pub frames_dropped: u64,
    pub reconnects: u64,
    pub last_frame_at: Option<DateTime<Utc>>,
    /// A picture of the last frame, when one was kept. Its path stays on the server: a
    /// client is told only whether there is one (`GET /api/cameras/{id}/thumbnail`).
    #[serde(rename = "has_thumbnail", serialize_with = "is_some")]
    #[schema(value_type = bool)]
    pub thumbnail: Option<String>,
    pub reported_at: DateTime<Utc>,
}

/// Serialise a server-side path as whether there is one.
pub(crate) fn is_some<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(v.is_some())
}
