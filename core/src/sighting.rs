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

impl Sighting {
    /// Check every field's form, as for events: what passes is a read a camera could make.
    pub fn check(&self) -> Result<(), String> {
        use chrono::Datelike;
        crate::event::check_camera_id(&self.camera_id).map_err(|m| format!("camera_id: {m}"))?;
        let plate_like = |p: &str| {
            (1..=16).contains(&p.len())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b' '))
        };
        if !plate_like(&self.plate) {
            return Err(format!(
                "plate: `{}` is not 1 to 16 letters, digits, `-` or `.`",
                self.plate.chars().take(40).collect::<String>()
            ));
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(format!(
                "confidence: {} is not a probability",
                self.confidence
            ));
        }
        let text = |field: &str, t: &str, max: usize| {
            if t.trim().is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
                Err(format!(
                    "{field}: must be 1 to {max} characters without control characters"
                ))
            } else {
                Ok(())
            }
        };
        text("vehicle_class", &self.vehicle_class, 64)?;
        text("source", &self.source, 2048)?;
        if !crate::event::YEARS.contains(&self.seen_at.year()) {
            return Err(format!(
                "seen_at: {} is not a time a camera saw",
                self.seen_at
            ));
        }
        // A day of video is 86,400,000 ms; a recording a year long is not one.
        if self.video_offset_ms.is_some_and(|ms| ms > 366 * 86_400_000) {
            return Err("video_offset_ms: more than a year into a recording".into());
        }
        Ok(())
    }
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

impl SightingUpload {
    /// A sighting read on this machine, made ready to travel: its picture's bytes read
    /// from where it lies here (a picture that cannot be read is left out, and said).
    pub fn of(sighting: &Sighting) -> Self {
        use base64::Engine as _;
        let picture = sighting.thumbnail.as_ref().and_then(|path| match std::fs::read(path) {
            Ok(bytes) => Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            Err(e) => {
                tracing::warn!(picture = %path, error = %e, "the sighting's picture cannot be read; sent without it");
                None
            }
        });
        Self {
            sighting: Sighting {
                thumbnail: None,
                ..sighting.clone()
            },
            picture_jpeg_base64: picture,
        }
    }
}
