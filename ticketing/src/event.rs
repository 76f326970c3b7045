use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Bumped on any change a reader of an older version could misread.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    RedLight,
    WrongWay,
    /// Crossing a solid line, or driving in a lane closed to the vehicle's class.
    WrongLane,
    SidewalkDriving,
    NoStopping,
    NoParking,
    /// Speeding, by how far over the limit: the decree fines each band differently.
    #[serde(rename = "speed_5_10")]
    Speed5To10,
    #[serde(rename = "speed_10_20")]
    Speed10To20,
    #[serde(rename = "speed_20_35")]
    Speed20To35,
    #[serde(rename = "speed_over_35")]
    SpeedOver35,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 10] = [
        ViolationKind::RedLight,
        ViolationKind::WrongWay,
        ViolationKind::WrongLane,
        ViolationKind::SidewalkDriving,
        ViolationKind::NoStopping,
        ViolationKind::NoParking,
        ViolationKind::Speed5To10,
        ViolationKind::Speed10To20,
        ViolationKind::Speed20To35,
        ViolationKind::SpeedOver35,
    ];

    /// The code the fine schedule and the case store use.
    pub fn as_str(&self) -> &'static str {
        match self {
            ViolationKind::RedLight => "red_light",
            ViolationKind::WrongWay => "wrong_way",
            ViolationKind::WrongLane => "wrong_lane",
            ViolationKind::SidewalkDriving => "sidewalk_driving",
            ViolationKind::NoStopping => "no_stopping",
            ViolationKind::NoParking => "no_parking",
            ViolationKind::Speed5To10 => "speed_5_10",
            ViolationKind::Speed10To20 => "speed_10_20",
            ViolationKind::Speed20To35 => "speed_20_35",
            ViolationKind::SpeedOver35 => "speed_over_35",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == code)
    }

    /// The speeding band for a speed this far over the limit (km/h); `None` under 5 km/h,
    /// which the decree does not fine.
    pub fn speeding(excess_kmh: f64) -> Option<Self> {
        match excess_kmh {
            e if e >= 35.0 => Some(ViolationKind::SpeedOver35),
            e if e >= 20.0 => Some(ViolationKind::Speed20To35),
            e if e >= 10.0 => Some(ViolationKind::Speed10To20),
            e if e >= 5.0 => Some(ViolationKind::Speed5To10),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlateReading {
    /// Normalised Vietnamese plate, e.g. `98A-123.45` or `99B1-123.45`.
    pub text: String,
    pub confidence: f32,
    /// The lines as read (one for cars, two for motorbikes), before normalisation.
    pub raw_lines: Vec<String>,
    /// The plate's background colour, when it could be told (older events lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<crate::plate::PlateColour>,
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

impl ViolationEvent {
    /// Parse an event, refusing versions this build does not know.
    pub fn from_json(json: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version =
            serde_json::from_str(json).map_err(|e| format!("not a violation event: {e}"))?;
        if v.schema_version != EVENT_SCHEMA_VERSION {
            return Err(format!(
                "violation event schema version {} is not supported (this build reads {EVENT_SCHEMA_VERSION})",
                v.schema_version
            ));
        }
        serde_json::from_str(json).map_err(|e| format!("malformed violation event: {e}"))
    }
}

/// An event for tests: `n` sets its id and time.
#[cfg(any(test, feature = "test-support"))]
pub fn sample_event(n: u128) -> ViolationEvent {
    ViolationEvent {
        schema_version: EVENT_SCHEMA_VERSION,
        event_id: Uuid::from_u128(n),
        camera_id: "cam-1".into(),
        camera_name: "Camera 1".into(),
        location: "Junction".into(),
        violation: ViolationKind::RedLight,
        // Ten minutes apart: distinct events never fall in one dedup window.
        occurred_at: DateTime::parse_from_rfc3339("2025-03-01T08:00:04+07:00")
            .unwrap()
            .to_utc()
            + chrono::Duration::minutes(10 * (n as i64 % 100_000)),
        plate: Some(PlateReading {
            text: "98A-123.45".into(),
            confidence: 0.99,
            raw_lines: vec!["98A-123.45".into()],
            colour: None,
        }),
        vehicle_class: "bus".into(),
        evidence_dir: "/tmp/e".into(),
        evidence_manifest_sha256: "00".into(),
        source: "a.mp4".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_versions() {
        let e = sample_event(1);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"violation\":\"red_light\""));
        assert_eq!(ViolationEvent::from_json(&json).unwrap(), e);
        let future = json.replace("\"schema_version\":1", "\"schema_version\":2");
        assert!(
            ViolationEvent::from_json(&future)
                .unwrap_err()
                .contains("version 2")
        );
        assert!(ViolationEvent::from_json("{}").is_err());
    }

    #[test]
    fn every_kind_serialises_as_its_fine_code() {
        for kind in ViolationKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(ViolationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ViolationKind::parse("jaywalking"), None);
    }

    #[test]
    fn speeding_bands_follow_the_decree() {
        assert_eq!(ViolationKind::speeding(4.9), None);
        assert_eq!(
            ViolationKind::speeding(5.0),
            Some(ViolationKind::Speed5To10)
        );
        assert_eq!(
            ViolationKind::speeding(19.9),
            Some(ViolationKind::Speed10To20)
        );
        assert_eq!(
            ViolationKind::speeding(20.0),
            Some(ViolationKind::Speed20To35)
        );
        assert_eq!(
            ViolationKind::speeding(60.0),
            Some(ViolationKind::SpeedOver35)
        );
    }
}
