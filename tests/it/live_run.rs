//! Live analysis end to end: the fixture junction served over RTSP in a loop, the real
//! detector and plate reader, a violation becoming a signed evidence package whose clip
//! (cut from the ring buffer without re-encoding) decodes and covers the violation.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::{DataDir, SystemClock};
use vigil_pipeline::FileSource;
use vigil_pipeline::output::signing::{EvidenceKey, verify_package};
use vigil_pipeline::run::live::deployment::Deployment;
use vigil_pipeline::run::live::{LiveRunner, RunnerSettings};
use vigil_testkit::sinks::MemorySink;

#[test]
fn a_violation_on_a_live_stream_becomes_a_signed_package_with_a_clip_covering_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, deployment) = common::junction_camera(dir.path(), 2, 2);
    let deployment = Deployment::load(&deployment).unwrap();
    let key = Arc::new(EvidenceKey::load_or_create(&dir.path().join("keys")).unwrap());
    // The case store refuses the first violation once (a locked database): the runner
    // must retry it rather than lose it.
    let store = MemorySink::refusing_first(1);
    let runner = LiveRunner::start(
        deployment,
        RunnerSettings {
            data: DataDir::new(dir.path()),
            models_path: common::models_path(),
            key: key.clone(),
            sink: store.clone(),
            clock: Arc::new(SystemClock),
        },
    )
    .unwrap();
    // The bus runs the red 4 s into each 12 s loop; its clip ends 2 s later.
    let until = Instant::now() + Duration::from_secs(60);
    while store.events().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = runner.metrics_text();
    runner.shutdown();
    assert!(
        metrics.contains("vigil_records_refused_total 1"),
        "the refusal was not counted:\n{metrics}"
    );
    let events = store.events();
    assert!(
        !events.is_empty(),
        "no violation in 60 s of stream; metrics:\n{metrics}"
    );
    let event = &events[0];
    assert_eq!(
        event.plate.as_ref().map(|p| p.text.as_str()),
        Some("98A-123.45")
    );
    assert!(event.source.starts_with("rtsp://127.0.0.1:"));
    // The violator's plate read is also a sighting, with its picture.
    let sightings = store.sightings();
    let bus = sightings.iter().find(|s| s.plate == "98A-123.45");
    let bus = bus.unwrap_or_else(|| panic!("no sighting of the bus: {sightings:?}"));
    assert_eq!(bus.camera_id, event.camera_id);
    assert!(std::path::Path::new(bus.thumbnail.as_deref().unwrap()).is_file());

    let package = std::path::Path::new(&event.evidence_dir);
    assert!(verify_package(package, &key.verifying_key()).is_empty());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(package.join("manifest.json")).unwrap()).unwrap();
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "clip.mp4"),
        "{manifest}"
    );
    let clip_start = Duration::from_millis(manifest["clip"]["video_offset_ms"].as_u64().unwrap());
    let crossing = Duration::from_millis(manifest["time"]["video_offset_ms"].as_u64().unwrap());
    let frames: Vec<_> = FileSource::open(&package.join("clip.mp4"), 5)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let clip_end = clip_start + frames.last().unwrap().pts;
    assert!(
        clip_start <= crossing && crossing + Duration::from_millis(1500) <= clip_end,
        "clip {clip_start:?}..{clip_end:?} does not cover the crossing at {crossing:?}"
    );
    for name in [
        "vigil_camera_frames_total",
        "vigil_inference_seconds_bucket",
        "vigil_camera_state",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    // No half-written clip or package is left behind.
    for entry in std::fs::read_dir(dir.path().join("evidence")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains("partial") && !name.ends_with(".clip.mp4"),
            "{name} left behind"
        );
    }
}
