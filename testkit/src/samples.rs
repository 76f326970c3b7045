//! Sample records, for tests that need one but not a real run.

use std::path::Path;

use chrono::DateTime;
use uuid::Uuid;
use vigil_core::{EVENT_SCHEMA_VERSION, PlateReading, Sighting, ViolationEvent, ViolationKind};
use vigil_evidence::EvidenceKey;
use vigil_evidence::sample::{SampleOf, file_sample_package};

/// An event for tests: `n` sets its id and time.
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
            candidates: Vec::new(),
        }),
        vehicle_class: "bus".into(),
        // No package has this manifest: see [`file_package`] for an event intake takes.
        evidence_manifest_sha256: "0".repeat(64),
        source: "a.mp4".into(),
    }
}

/// A plate read for tests: `n` sets its id, plate and time.
pub fn sample_sighting(n: u128) -> Sighting {
    Sighting {
        sighting_id: Uuid::from_u128(n),
        camera_id: "cam-1".into(),
        plate: format!("98A-{n:03}.45"),
        confidence: 0.9,
        vehicle_class: "car".into(),
        plate_colour: Some(vigil_core::PlateColour::White),
        seen_at: DateTime::from_timestamp(1_750_000_000 + n as i64, 0).unwrap_or_default(),
        source: "rtsp://127.0.0.1:8554/a".into(),
        thumbnail: Some(format!("/data/sightings/cam-1/{n}.jpg")),
        video_offset_ms: None,
    }
}

/// File a signed evidence package for `event` in the evidence store at `evidence_root`,
/// as the pipeline writes one (two key frames and a plate crop, a manifest naming the
/// event, its camera and violation), and set the event's manifest hash to it: an event
/// intake takes.
pub fn file_package(evidence_root: &Path, event: &mut ViolationEvent, key: &EvidenceKey) {
    let jpegs: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let img = image::RgbImage::from_pixel(8, 8, image::Rgb([i * 60, 90, 30]));
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, image::ImageFormat::Jpeg)
                .expect("a JPEG");
            bytes.into_inner()
        })
        .collect();
    let files: Vec<(&str, &[u8])> = ["1_before.jpg", "2_on.jpg", "plate.jpg"]
        .into_iter()
        .zip(jpegs.iter().map(Vec::as_slice))
        .collect();
    let of = SampleOf {
        event_id: event.event_id,
        camera_id: &event.camera_id,
        violation: event.violation.as_str(),
    };
    event.evidence_manifest_sha256 =
        file_sample_package(evidence_root, &of, key, &files).expect("a sample package");
}
