//! A sighting: one plate read off a passing vehicle, violation or not. Investigators
//! search them; the case service keeps them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plate::PlateColour;

/// One plate read, as the pipeline hands it over. `thumbnail` is a path on the machine
/// that read it: it travels between the pipeline and its store, never to API clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// Derived from the camera, the source and the moment: recording twice adds nothing.
    pub sighting_id: Uuid,
    pub camera_id: String,
    pub plate: String,
    pub confidence: f32,
    pub vehicle_class: String,
    pub plate_colour: Option<PlateColour>,
    pub seen_at: DateTime<Utc>,
    /// The video it was read from (file path, or stream URL without credentials).
    pub source: String,
    /// A picture of the vehicle, when one was kept.
    pub thumbnail: Option<String>,
    /// Where in the source it was read, when the source is a recording.
    pub video_offset_ms: Option<u64>,
}

/// A sighting sent to the case service over its API (`POST /api/sightings`): the record
/// without a path (which would mean nothing on the service's machine), and the picture's
/// bytes, which the service keeps in its own data folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SightingUpload {
    /// Its `thumbnail` is ignored.
    pub sighting: Sighting,
    /// The JPEG, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture_jpeg_base64: Option<String>,
}
