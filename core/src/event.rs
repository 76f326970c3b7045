//! The violation event: what the pipeline decided, handed to the case service in-process,
//! over HTTP, or (later) over a message bus. Versioned, so that workers and the service
//! can be upgraded apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::plate::PlateColour;
use crate::violation::ViolationKind;

/// Bumped on any change a reader of an older version could misread. Version 2 dropped
/// `evidence_dir` (a path on the worker's machine, which the service must never take):
/// the package is the one named by the event id in the service's own evidence store.
pub const EVENT_SCHEMA_VERSION: u32 = 2;
/// The oldest version this build still reads (its `evidence_dir` is ignored).
pub const OLDEST_EVENT_SCHEMA_VERSION: u32 = 1;

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
    /// Other plates the reads point to, likeliest first, with confidences on the same
    /// scale: what a reviewer picks from when `confidence` is too low to trust `text`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<PlateCandidate>,
}

/// A plate the reads could also have been.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateCandidate {
    pub text: String,
    pub confidence: f32,
}

/// Candidates an event may carry.
pub const MAX_PLATE_CANDIDATES: usize = 8;

/// A plate text in its normal form, or why not.
fn check_plate_text(field: &str, text: &str) -> Result<(), EventError> {
    let normal = crate::plate::parse(&[text]).map(|plate| plate.to_string());
    if text.len() > 16 || normal.as_deref() != Ok(text) {
        return Err(EventError::Malformed(format!(
            "{field}: `{}` is not a Vietnamese plate in its normal form (98A-123.45)",
            shown(text)
        )));
    }
    Ok(())
}

fn check_probability(field: &str, p: f32) -> Result<(), EventError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(EventError::Malformed(format!(
            "{field}: {p} is not a probability"
        )));
    }
    Ok(())
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
    /// SHA-256 of the evidence package's manifest.json.
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
        "violation event schema version {0} is not supported (this build reads {OLDEST_EVENT_SCHEMA_VERSION} to {EVENT_SCHEMA_VERSION})"
    )]
    Version(u32),
    #[error("malformed violation event: {0}")]
    Malformed(String),
}

/// A camera id: 1 to 64 letters, digits, `.`, `_` or `-` (it names folders and goes into
/// event ids, logs and notices).
pub fn check_camera_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!(
            "must be 1 to 64 characters (it has {})",
            id.chars().count()
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "`{}` may hold only letters, digits, `.`, `_` and `-`",
            shown(id)
        ));
    }
    Ok(())
}

/// At most 40 characters of a value, for a message about it.
fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}

/// Free text of 1 to `max` characters with no control characters.
fn check_text(field: &str, text: &str, max: usize) -> Result<(), EventError> {
    let n = text.chars().count();
    if text.trim().is_empty() || n > max || text.chars().any(char::is_control) {
        return Err(EventError::Malformed(format!(
            "{field}: must be 1 to {max} characters without control characters (`{}`)",
            shown(text)
        )));
    }
    Ok(())
}

/// The years a violation can have happened in: a camera's clock at 1970 or 9999 is wrong.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

impl ViolationEvent {
    /// Check every field's form: an event that passes is one the pipeline could have
    /// made (a plate in its normal form, a confidence that is a probability, a time in
    /// this century, names of a sane length).
    pub fn check(&self) -> Result<(), EventError> {
        use chrono::Datelike;
        let bad = |m: String| Err(EventError::Malformed(m));
        if let Err(m) = check_camera_id(&self.camera_id) {
            return bad(format!("camera_id: {m}"));
        }
        check_text("camera_name", &self.camera_name, 200)?;
        check_text("location", &self.location, 200)?;
        check_text("vehicle_class", &self.vehicle_class, 64)?;
        check_text("source", &self.source, 2048)?;
        if !YEARS.contains(&self.occurred_at.year()) {
            return bad(format!(
                "occurred_at: {} is not a time a camera saw (years {}..={})",
                self.occurred_at,
                YEARS.start(),
                YEARS.end()
            ));
        }
        if self.evidence_manifest_sha256.len() != 64
            || !self
                .evidence_manifest_sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        {
            return bad("evidence_manifest_sha256: is not 64 hex digits".into());
        }
        if let Some(p) = &self.plate {
            check_plate_text("plate.text", &p.text)?;
            check_probability("plate.confidence", p.confidence)?;
            if p.candidates.len() > MAX_PLATE_CANDIDATES {
                return bad(format!(
                    "plate.candidates: at most {MAX_PLATE_CANDIDATES} (it has {})",
                    p.candidates.len()
                ));
            }
            for c in &p.candidates {
                check_plate_text("plate.candidates.text", &c.text)?;
                check_probability("plate.candidates.confidence", c.confidence)?;
            }
            if p.raw_lines.len() > 4 || p.raw_lines.iter().any(|l| l.chars().count() > 32) {
                return bad("plate.raw_lines: at most 4 lines of 32 characters".into());
            }
        }
        Ok(())
    }

    /// Parse an event, refusing versions this build does not know.
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version =
            serde_json::from_str(json).map_err(|e| EventError::NotAnEvent(e.to_string()))?;
        if !(OLDEST_EVENT_SCHEMA_VERSION..=EVENT_SCHEMA_VERSION).contains(&v.schema_version) {
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
        "vehicle_class":"bus","evidence_dir":"/tmp/e",
        "evidence_manifest_sha256":"0000000000000000000000000000000000000000000000000000000000000000",
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
        assert!(
            !json.contains("evidence_dir"),
            "a version 1 event's path is not kept"
        );
        assert_eq!(ViolationEvent::from_json(&json).unwrap(), e);
        let future = json.replace("\"schema_version\":1", "\"schema_version\":3");
        assert!(
            ViolationEvent::from_json(&future)
                .unwrap_err()
                .to_string()
                .contains("version 3")
        );
        assert!(ViolationEvent::from_json("{}").is_err());
        assert_eq!(e.check(), Ok(()));
    }

    type Spoil = Box<dyn Fn(&mut ViolationEvent)>;

    #[test]
    fn fields_no_camera_could_send_are_refused_by_name() {
        let good = ViolationEvent::from_json(V1).unwrap();
        let cases: Vec<(&str, Spoil)> = vec![
            ("camera_id", Box::new(|e| e.camera_id = "x".repeat(1 << 20))),
            ("camera_id", Box::new(|e| e.camera_id = "../../etc".into())),
            ("camera_id", Box::new(|e| e.camera_id = String::new())),
            ("camera_name", Box::new(|e| e.camera_name = "n\u{0}".into())),
            ("location", Box::new(|e| e.location = "l".repeat(201))),
            ("vehicle_class", Box::new(|e| e.vehicle_class = " ".into())),
            (
                "occurred_at",
                Box::new(|e| e.occurred_at = "1900-01-01T00:00:00Z".parse().unwrap()),
            ),
            (
                "occurred_at",
                Box::new(|e| e.occurred_at = "9999-01-01T00:00:00Z".parse().unwrap()),
            ),
            (
                "evidence_manifest_sha256",
                Box::new(|e| e.evidence_manifest_sha256 = "zz".into()),
            ),
            (
                "plate.text",
                Box::new(|e| e.plate.as_mut().unwrap().text = "9".repeat(1 << 20)),
            ),
            (
                "plate.text",
                Box::new(|e| e.plate.as_mut().unwrap().text = "98A-l23.4S".into()),
            ),
            (
                "plate.confidence",
                Box::new(|e| e.plate.as_mut().unwrap().confidence = f32::NAN),
            ),
            (
                "plate.confidence",
                Box::new(|e| e.plate.as_mut().unwrap().confidence = 2.0),
            ),
            (
                "plate.candidates.text",
                Box::new(|e| {
                    e.plate.as_mut().unwrap().candidates = vec![PlateCandidate {
                        text: "../x".into(),
                        confidence: 0.1,
                    }]
                }),
            ),
            (
                "plate.candidates.confidence",
                Box::new(|e| {
                    e.plate.as_mut().unwrap().candidates = vec![PlateCandidate {
                        text: "98A-128.45".into(),
                        confidence: -1.0,
                    }]
                }),
            ),
            (
                "plate.candidates",
                Box::new(|e| {
                    e.plate.as_mut().unwrap().candidates = vec![
                        PlateCandidate {
                            text: "98A-128.45".into(),
                            confidence: 0.1,
                        };
                        9
                    ]
                }),
            ),
            (
                "plate.raw_lines",
                Box::new(|e| e.plate.as_mut().unwrap().raw_lines = vec!["x".repeat(33)]),
            ),
        ];
        for (field, change) in cases {
            let mut e = good.clone();
            change(&mut e);
            let err = e.check().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
            assert!(
                err.len() < 300,
                "the message repeats the value whole: {err}"
            );
        }
    }
}
