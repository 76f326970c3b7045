//! Live analysis end to end: the fixture junction served over RTSP in a loop, the real
//! detector and plate reader, a violation becoming a signed evidence package whose clip
//! (cut from the ring buffer without re-encoding) decodes and covers the violation.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::{DataDir, SystemClock};
use vigil_evidence::{EvidenceKey, TrustedKeys, verify_package};
use vigil_pipeline::FileSource;
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
            any_camera: false,
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

    let package = &DataDir::new(dir.path()).package(event.event_id);
    let trusted = TrustedKeys::one(key.verifying_key());
    assert_eq!(verify_package(package, &trusted), vec![]);
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

/// A recorded file played as a live camera on a clock: each frame comes out once the clock
/// has passed its time, and the video clips are cut from is held up to the same time.
struct Replay {
    file: std::path::PathBuf,
    clock: Arc<vigil_core::ManualClock>,
}

struct ReplayFrames {
    frames: std::collections::VecDeque<vigil_pipeline::Frame>,
    clock: Arc<vigil_core::ManualClock>,
    opened: Duration,
}

impl vigil_pipeline::source::FrameSource for ReplayFrames {
    fn next_frame(
        &mut self,
    ) -> Result<Option<vigil_pipeline::Frame>, vigil_pipeline::source::SourceError> {
        use vigil_core::Clock;
        let now = self.clock.monotonic() - self.opened;
        match self.frames.front() {
            Some(f) if f.pts <= now => Ok(self.frames.pop_front()),
            _ => Ok(None),
        }
    }

    fn ended(&self) -> bool {
        self.frames.is_empty()
    }
}

struct ReplayClips {
    file: vigil_pipeline::source::clip::RecordedClips,
    clock: Arc<vigil_core::ManualClock>,
    opened: Duration,
}

impl vigil_pipeline::source::clip::ClipSource for ReplayClips {
    fn cut(
        &self,
        from: Duration,
        to: Duration,
        out: &std::path::Path,
    ) -> Result<vigil_pipeline::source::clip::Clip, vigil_pipeline::source::clip::ClipError> {
        self.file.cut(from, to, out)
    }

    fn held_until(&self) -> Option<Duration> {
        use vigil_core::Clock;
        Some(self.clock.monotonic() - self.opened)
    }
}

struct ReplayMonitor(String);

impl vigil_pipeline::run::live::CameraMonitor for ReplayMonitor {
    fn status(&self) -> vigil_pipeline::source::rtsp::CameraStatus {
        vigil_pipeline::source::rtsp::CameraStatus {
            id: self.0.clone(),
            url: "replay://redlight_a.mp4".into(),
            state: vigil_pipeline::source::rtsp::CameraState::Streaming,
            frames_in: 0,
            frames_dropped: 0,
            units_in: 0,
            reconnects: 0,
            last_frame_age: None,
            ring_bytes: 0,
            evidence: None,
        }
    }

    fn queued(&self) -> usize {
        0
    }

    fn stop(&self) {}
}

impl vigil_pipeline::run::live::CameraOpener for Replay {
    fn open(
        &self,
        spec: &vigil_pipeline::run::live::deployment::LiveCameraSpec,
        _clock: Arc<dyn vigil_core::Clock>,
    ) -> Result<vigil_pipeline::run::live::OpenCamera, vigil_pipeline::source::SourceError> {
        use vigil_core::Clock;
        let frames =
            FileSource::open(&self.file, spec.config.analysis_fps)?.collect::<Result<_, _>>()?;
        let opened = self.clock.monotonic();
        Ok(vigil_pipeline::run::live::OpenCamera {
            frames: Box::new(ReplayFrames {
                frames,
                clock: self.clock.clone(),
                opened,
            }),
            clips: Arc::new(ReplayClips {
                file: vigil_pipeline::source::clip::RecordedClips {
                    file: self.file.clone(),
                },
                clock: self.clock.clone(),
                opened,
            }),
            monitor: Arc::new(ReplayMonitor(spec.config.id.clone())),
        })
    }
}

/// Notes when (on the clock) each event arrived.
struct Timed {
    store: Arc<MemorySink>,
    clock: Arc<vigil_core::ManualClock>,
    arrived: std::sync::Mutex<Vec<Duration>>,
}

impl vigil_core::EventSink for Timed {
    fn record_event(
        &self,
        event: &vigil_core::ViolationEvent,
    ) -> Result<vigil_core::Recorded, vigil_core::SinkError> {
        use vigil_core::Clock;
        self.arrived.lock().unwrap().push(self.clock.monotonic());
        self.store.record_event(event)
    }

    fn record_sighting(&self, s: &vigil_core::Sighting) -> Result<bool, vigil_core::SinkError> {
        self.store.record_sighting(s)
    }
}

/// The runner of `deployment`, every camera replaying the red-light fixture on `clock`,
/// with the evidence key it signs with.
fn replaying(
    dir: &std::path::Path,
    deployment: &std::path::Path,
    sink: Arc<dyn vigil_core::EventSink>,
    clock: &Arc<vigil_core::ManualClock>,
) -> (LiveRunner, Arc<EvidenceKey>) {
    let key = Arc::new(EvidenceKey::load_or_create(&dir.join("keys")).unwrap());
    let runner = LiveRunner::start_with(
        Deployment::load(deployment).unwrap(),
        RunnerSettings {
            data: DataDir::new(dir),
            models_path: common::models_path(),
            key: key.clone(),
            sink,
            clock: clock.clone(),
            any_camera: false,
        },
        Arc::new(Replay {
            file: common::fixture("redlight_a.mp4"),
            clock: clock.clone(),
        }),
    )
    .unwrap();
    (runner, key)
}

#[test]
fn a_live_camera_on_a_manual_clock_waits_for_its_clip_on_that_clock_and_is_timed_by_it() {
    use vigil_core::Clock;
    let dir = tempfile::tempdir().unwrap();
    let start: chrono::DateTime<chrono::Utc> = "2025-03-01T01:00:00Z".parse().unwrap();
    let clock = Arc::new(vigil_core::ManualClock::new(start));
    let deployment = dir.path().join("deployment.toml");
    std::fs::write(
        &deployment,
        format!(
            "[run]\nclip_before_seconds = 2\nclip_after_seconds = 3\n\n\
             [[camera]]\nconfig = \"{}\"\nurl = \"rtsp://127.0.0.1:1/replayed\"\n",
            common::camera_path().display()
        ),
    )
    .unwrap();
    let sink = Arc::new(Timed {
        store: MemorySink::new(),
        clock: clock.clone(),
        arrived: Default::default(),
    });
    let (runner, key) = replaying(dir.path(), &deployment, sink.clone(), &clock);
    // The runner's idle waits are what move the clock: the replay runs as fast as the
    // analysis does. This thread only waits for that work to be done.
    let until = Instant::now() + Duration::from_secs(120);
    while sink.store.events().is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    runner.shutdown();
    let events = sink.store.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(
        event.plate.as_ref().map(|p| p.text.as_str()),
        Some("98A-123.45")
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            DataDir::new(dir.path())
                .package(event.event_id)
                .join("manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let crossing = Duration::from_millis(manifest["time"]["video_offset_ms"].as_u64().unwrap());
    // Timed by the clock: the stream started when the clock said, the violation is that
    // far into it.
    assert_eq!(
        (event.occurred_at - start).num_milliseconds(),
        crossing.as_millis() as i64
    );
    // Handed over only once the clock had passed the clip's end, 3 s after the crossing.
    let arrived = sink.arrived.lock().unwrap()[0];
    assert!(arrived >= crossing + Duration::from_secs(3), "{arrived:?}");
    assert!(
        clock.monotonic() < Duration::from_secs(60),
        "{:?}",
        clock.monotonic()
    );
    assert_eq!(
        verify_package(
            &DataDir::new(dir.path()).package(event.event_id),
            &TrustedKeys::one(key.verifying_key())
        ),
        vec![]
    );
    let clip_start = Duration::from_millis(manifest["clip"]["video_offset_ms"].as_u64().unwrap());
    assert!(
        clip_start <= crossing.saturating_sub(Duration::from_secs(1)),
        "{clip_start:?}"
    );
}

#[test]
fn cameras_whose_looks_share_detector_runs_each_get_their_own_violation() {
    let dir = tempfile::tempdir().unwrap();
    let start: chrono::DateTime<chrono::Utc> = "2025-03-01T01:00:00Z".parse().unwrap();
    let clock = Arc::new(vigil_core::ManualClock::new(start));
    // Three cameras at the same junction, their looks batched across cameras (as on a
    // GPU): three workers, each analysing one camera's frame at a time, hand their looks
    // to one shared detector.
    let mut toml = String::from(
        "[run]\ninference_workers = 3\nbatch_size = 4\nbatch_wait_ms = 30\n\
         clip_before_seconds = 2\nclip_after_seconds = 2\n",
    );
    for n in 0..3 {
        toml.push_str(&format!(
            "\n[[camera]]\nconfig = \"{}\"\nid = \"cam{n}\"\nurl = \"rtsp://127.0.0.1:1/replayed{n}\"\n",
            common::camera_path().display()
        ));
    }
    let deployment = dir.path().join("deployment.toml");
    std::fs::write(&deployment, toml).unwrap();
    let store = MemorySink::new();
    let (runner, _) = replaying(dir.path(), &deployment, store.clone(), &clock);
    let until = Instant::now() + Duration::from_secs(180);
    while store.events().len() < 3 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics = runner.metrics_text();
    runner.shutdown();
    let events = store.events();
    let mut cameras: Vec<&str> = events.iter().map(|e| e.camera_id.as_str()).collect();
    cameras.sort();
    assert_eq!(cameras, ["cam0", "cam1", "cam2"], "{events:?}\n{metrics}");
    // The same replayed violation on each: the same plate, the same moment in its video.
    let offsets: Vec<u64> = events
        .iter()
        .map(|e| {
            assert_eq!(
                e.plate.as_ref().map(|p| p.text.as_str()),
                Some("98A-123.45"),
                "{e:?}"
            );
            let manifest: serde_json::Value = serde_json::from_slice(
                &std::fs::read(
                    DataDir::new(dir.path())
                        .package(e.event_id)
                        .join("manifest.json"),
                )
                .unwrap(),
            )
            .unwrap();
            manifest["time"]["video_offset_ms"].as_u64().unwrap()
        })
        .collect();
    assert!(offsets.iter().all(|o| *o == offsets[0]), "{offsets:?}");
    // Looks really went through the shared detector, and some runs held several.
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let (runs, looks) = (
        metric("vigil_detector_batch_size_count"),
        metric("vigil_detector_batch_size_sum"),
    );
    assert!(runs > 0.0, "{metrics}");
    assert!(
        looks > runs,
        "no run was shared by two looks: {looks} looks in {runs} runs"
    );
}
