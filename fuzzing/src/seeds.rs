//! The inputs mutation starts from: the project's own files where it has them (camera
//! configs, the model manifest), valid examples written here where it does not, and
//! recordings made by GStreamer on the spot. Every seed is accepted by its target (the
//! suite checks it), so a mutation starts from the paths real input takes.

use std::path::Path;

use sha2::{Digest, Sha256};
use vigil_core::{EVENT_SCHEMA_VERSION, PlateReading, ViolationEvent, ViolationKind};

pub const DEMO_CAMERA: &str = include_str!("../../fixtures/cameras/junction-demo.toml");

const CAMERAS: &[&str] = &[
    DEMO_CAMERA,
    include_str!("../../fixtures/scenarios/cameras/carlane.toml"),
    include_str!("../../fixtures/scenarios/cameras/nostop.toml"),
    include_str!("../../fixtures/scenarios/cameras/oneway.toml"),
    include_str!("../../fixtures/scenarios/cameras/sidewalk.toml"),
    include_str!("../../fixtures/scenarios/cameras/solidline.toml"),
    include_str!("../../fixtures/scenarios/cameras/speed.toml"),
];

const DEPLOYMENTS: &[&str] = &[
    "[run]\nclip_before_seconds = 2\nclip_after_seconds = 3\n\n\
     [[camera]]\nconfig = \"junction.toml\"\nurl = \"rtsp://127.0.0.1:8554/a\"\n",
    "[run]\ninference_workers = 2\nstall_seconds = 10\nqueue_frames = 64\nmotion_gating = true\n\n\
     [[camera]]\nconfig = \"junction.toml\"\nid = \"bn-a\"\nurl = \"rtsp://10.0.0.5/sub\"\n\
     evidence_url = \"rtsp://10.0.0.5/main\"\nusername = \"viewer\"\ntransport = \"tcp\"\n\
     frame_size = [640, 360]\n\n\
     [[camera]]\nconfig = \"junction.toml\"\nid = \"bn-b\"\nurl = \"rtsp://10.0.0.6/sub\"\n\
     transport = \"udp\"\n",
];

const MODEL_MANIFEST: &str = include_str!("../../models/models.toml");

const PLATES: &[&str] = &[
    "98A-123.45",
    "51K-123.45",
    "30LD-123.45",
    "29A-1234",
    "99-B1\n123.45",
    "29-HA\n002.33",
    "98A-l23.4S",
    "99-B1 123.45",
    "98A12345",
];

/// The event id the evidence target's package folder is named by.
pub const PACKAGE_EVENT: &str = "6f1c3a52-8e0b-4c1d-9a77-1b2c3d4e5f60";
/// The one file in that package.
pub const PACKAGE_FILE: &[u8] = b"\xff\xd8\xff\xe0 not really a JPEG, but hashed as one";

fn event() -> ViolationEvent {
    ViolationEvent {
        schema_version: EVENT_SCHEMA_VERSION,
        event_id: uuid::Uuid::from_u128(0x5eed),
        camera_id: "bn-demo-01".into(),
        camera_name: "Demo junction".into(),
        location: "Ngo Gia Tu x Le Loi, Bac Ninh".into(),
        violation: ViolationKind::RedLight,
        occurred_at: chrono::DateTime::parse_from_rfc3339("2025-03-01T08:00:04+07:00")
            .expect("a valid time")
            .to_utc(),
        plate: Some(PlateReading {
            text: "99B1-123.45".into(),
            confidence: 0.93,
            raw_lines: vec!["99-B1".into(), "123.45".into()],
            colour: Some(vigil_core::PlateColour::White),
            candidates: vec![vigil_core::PlateCandidate {
                text: "99B7-123.45".into(),
                confidence: 0.04,
            }],
        }),
        vehicle_class: "motorbike".into(),
        evidence_manifest_sha256: "ab".repeat(32),
        source: "rtsp://10.0.0.5/sub".into(),
    }
}

fn package_manifests() -> Vec<Vec<u8>> {
    let file = serde_json::json!({
        "name": "frame.jpg",
        "sha256": hex::encode(Sha256::digest(PACKAGE_FILE)),
        "bytes": PACKAGE_FILE.len(),
    });
    let full = serde_json::json!({
        "schema_version": 1,
        "event_id": PACKAGE_EVENT,
        "violation": "red_light",
        "camera": { "id": "bn-demo-01" },
        "time": { "video_offset_ms": 4000 },
        "clip": { "file": "frame.jpg", "video_offset_ms": 1500 },
        "files": [file],
    });
    let bare = serde_json::json!({ "event_id": PACKAGE_EVENT, "files": [file] });
    [full, bare]
        .iter()
        .map(|m| serde_json::to_vec_pretty(m).expect("JSON serialises"))
        .collect()
}

#[cfg(feature = "pipeline")]
/// Short recordings made by GStreamer into `dir`: H.264 in MP4 with the index at the end
/// (as cameras' exports are) and at the front (as web exports are).
pub fn recordings(dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init()?;
    let mut out = Vec::new();
    for (i, faststart) in [false, true].into_iter().enumerate() {
        let path = dir.join(format!("seed-{i}.mp4"));
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers=10 pattern=ball ! \
             video/x-raw,width=160,height=96,framerate=5/1 ! x264enc key-int-max=5 ! \
             h264parse ! mp4mux faststart={faststart} ! filesink location=\"{}\"",
            path.display()
        ))?;
        pipeline.set_state(gst::State::Playing)?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| anyhow::anyhow!("a pipeline has a bus"))?;
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null)?;
        match ended.as_ref().map(|m| m.type_()) {
            Some(gst::MessageType::Eos) => out.push(std::fs::read(&path)?),
            other => anyhow::bail!("making the seed recording ended with {other:?}: {ended:?}"),
        }
    }
    Ok(out)
}

/// The seeds of `target`; recordings are made in `dir`.
pub fn seeds(target: &str, #[allow(unused_variables)] dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = |all: &[&str]| all.iter().map(|s| s.as_bytes().to_vec()).collect();
    Ok(match target {
        "camera_config" => text(CAMERAS),
        "deployment" => text(DEPLOYMENTS),
        "model_manifest" => text(&[MODEL_MANIFEST]),
        "plate" => text(PLATES),
        "event_json" => {
            let e = event();
            let mut unread = e.clone();
            unread.plate = None;
            vec![serde_json::to_vec_pretty(&e)?, serde_json::to_vec(&unread)?]
        }
        "evidence_package" => package_manifests(),
        #[cfg(feature = "pipeline")]
        "mp4_creation_time" | "file_source" => recordings(dir)?,
        other => anyhow::bail!("no fuzz target is called {other}"),
    })
}
