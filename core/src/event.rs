//! The violation event: what the pipeline decided, handed to the case service in-process,
//! over HTTP, or (later) over a message bus. Versioned, so that workers and the service
//! can be upgraded apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plate::PlateColour;
use crate::violation::ViolationKind;

/// Bumped on any change a reader of an older version could misread.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateReading {
    /// Normalised Vietnamese plate, e.g. `98A-123.45` or `99B1-123.45`.
    pub text: String,
    pub confidence: f32,
    /// The lines as read (one for cars, two for motorbikes), before normalisation.
    pub raw_lines: Vec<String>,
    /// The plate's background colour, when it could be told (older events lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<PlateColour>,
}

/// A violation decided by the pipeline, handed to ticketing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationEvent {
    pub schema_version: u32,
    /// Derived from the camera, the source and the moment of the violation, so that
    /// processing the same recording again yields the same id.
    pub event_id: Uuid,
    pub camera_id: String,
    pub camera_name: String,
    pub location: String,
    pub violation: ViolationKind,
    pub occurred_at: DateTime<Utc>,
    /// `None` when no plate could be read; the case still goes to review.
    pub plate: Option<PlateReading>,
    pub vehicle_class: String,
    pub evidence_dir: String,
    /// SHA-256 of the evidence folder's manifest.json.
    pub evidence_manifest_sha256: String,
    /// Where the video came from (file path or stream URL without credentials).
    pub source: String,
}

/// Why a text is not a violation event this build can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a violation event: {0}")]
    NotAnEvent(String),
    #[error(
        "violation event schema version {0} is not supported (this build reads {EVENT_SCHEMA_VERSION})"
    )]
    Version(u32),
    #[error("malformed violation event: {0}")]
    Malformed(String),
}

impl ViolationEvent {
    /// Parse an event, refusing versions this build does not know.
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version =
            serde_json::from_str(json).map_err(|e| EventError::NotAnEvent(e.to_string()))?;
        if v.schema_version != EVENT_SCHEMA_VERSION {
            return Err(EventError::Version(v.schema_version));
        }
        serde_json::from_str(json).map_err(|e| EventError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as a worker of schema version 1 writes it.
    const V1: &str = r#"{"schema_version":1,"event_id":"00000000-0000-0000-0000-000000000001",
        "camera_id":"cam-1","camera_name":"Camera 1","location":"Junction",
        "violation":"red_light","occurred_at":"2025-03-01T01:00:04Z",
        "plate":{"text":"98A-123.45","confidence":0.99,"raw_lines":["98A-123.45"]},
        "vehicle_class":"bus","evidence_dir":"/tmp/e","evidence_manifest_sha256":"00",
        "source":"a.mp4"}"#;

    #[test]
    fn round_trips_and_rejects_unknown_versions() {
        let e = ViolationEvent::from_json(V1).unwrap();
        assert_eq!(e.violation, ViolationKind::RedLight);
        assert_eq!(
            e.plate.as_ref().map(|p| p.colour),
            Some(None),
            "older events lack it"
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"violation\":\"red_light\""));
        assert_eq!(ViolationEvent::from_json(&json).unwrap(), e);
        let future = json.replace("\"schema_version\":1", "\"schema_version\":2");
        assert!(
            ViolationEvent::from_json(&future)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
        assert!(ViolationEvent::from_json("{}").is_err());
    }
}
