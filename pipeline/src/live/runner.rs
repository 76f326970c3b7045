//! `vigil run`: many live cameras in one process. Each camera decodes on its own
//! (GStreamer threads); inference is shared: `inference_workers` threads, each with its
//! own detector session, take frames from the cameras' bounded queues in turn. A camera's
//! frames are analysed in order (its analysis state is held by one worker at a time). A
//! violation waits until the ring buffer holds `clip_after` seconds past it, then its clip
//! is cut, the evidence package written and signed, and the event handed to the sink.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vigil_core::ViolationEvent;

use super::LiveError;
use super::camera::{CameraState, CameraStatus, LiveCamera};
use super::clip::write_clip;
use super::deployment::Deployment;
use super::recorder::{Record, Recorder, RecorderMetrics, RecorderSettings};
use crate::analyzer::{Analyzer, AnalyzerSettings, Finding, Look, Models};
use crate::batch::{event_id, violation_event};
use crate::config::CameraConfig;
use crate::evidence::{self, ClipFile, SourceInfo};
use crate::motion::MotionGate;
use crate::signing::EvidenceKey;

/// Where finished violations go (the case store, in-process or over HTTP).
pub type EventSink = Arc<dyn Fn(ViolationEvent) -> Result<(), String> + Send + Sync>;
/// Where every plate read goes (investigators' search).
pub type SightingSink = Arc<dyn Fn(vigil_core::Sighting) -> Result<(), String> + Send + Sync>;

struct Pending {
    finding: Finding,
    started_at: DateTime<Utc>,
    /// Stream time up to which the clip should run.
    until: Duration,
    /// Give up waiting for the clip's end at this moment (a camera that stopped sending).
    deadline: Instant,
}

/// One camera's analysis counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisCounts {
    pub camera: String,
    /// Frames run through the detector, whole or in a region.
    pub analysed: u64,
    /// Frames skipped by motion gating: nothing moved.
    pub skipped: u64,
    /// Of `analysed`, those detected in the changed region only.
    pub regions: u64,
    /// Frames followed between detections (not detected in): things moved, only away
    /// from the rules' geometry.
    pub coasted: u64,
    pub violations: u64,
}

struct SlotState {
    analyzer: Analyzer,
    gate: MotionGate,
    started_at: DateTime<Utc>,
    pending: Vec<Pending>,
}

struct Slot {
    camera: LiveCamera,
    config: CameraConfig,
    state: Mutex<SlotState>,
    /// Apart from `state`, which a worker holds while it analyses: the cameras page asks
    /// for this at any time.
    latest: Mutex<Option<Arc<image::RgbImage>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CameraLabel {
    camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    camera: String,
    state: String,
}

/// Prometheus metrics of the live cameras and the shared inference.
pub struct Metrics {
    registry: Registry,
    frames: Family<CameraLabel, Counter>,
    dropped: Family<CameraLabel, Counter>,
    reconnects: Family<CameraLabel, Counter>,
    analysed: Family<CameraLabel, Counter>,
    skipped: Family<CameraLabel, Counter>,
    regions: Family<CameraLabel, Counter>,
    coasted: Family<CameraLabel, Counter>,
    violations: Family<CameraLabel, Counter>,
    state: Family<StateLabel, Gauge>,
    last_frame_age: Family<CameraLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    queue: Family<CameraLabel, Gauge>,
    inference: Histogram,
    recorder: RecorderMetrics,
    /// Camera counters already reported: (frames, dropped, reconnects) per camera.
    seen: Mutex<std::collections::HashMap<String, (u64, u64, u64)>>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("vigil");
        let m = Self {
            frames: Family::default(),
            dropped: Family::default(),
            reconnects: Family::default(),
            analysed: Family::default(),
            skipped: Family::default(),
            regions: Family::default(),
            coasted: Family::default(),
            violations: Family::default(),
            state: Family::default(),
            last_frame_age: Family::default(),
            queue: Family::default(),
            inference: Histogram::new([0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5]),
            recorder: RecorderMetrics::default(),
            seen: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register("camera_frames", "Analysis frames decoded", m.frames.clone());
        registry.register(
            "camera_frames_dropped",
            "Analysis frames dropped because inference fell behind",
            m.dropped.clone(),
        );
        registry.register(
            "camera_reconnects",
            "Connections lost and retried",
            m.reconnects.clone(),
        );
        registry.register(
            "camera_frames_analysed",
            "Frames run through the detector",
            m.analysed.clone(),
        );
        registry.register(
            "camera_frames_skipped",
            "Frames skipped by motion gating (nothing moved)",
            m.skipped.clone(),
        );
        registry.register(
            "camera_frames_region",
            "Frames analysed in the changed region only (motion gating)",
            m.regions.clone(),
        );
        registry.register(
            "camera_frames_coasted",
            "Frames followed between detections, not detected in: motion only away from the rules' geometry",
            m.coasted.clone(),
        );
        registry.register(
            "camera_violations",
            "Violations packaged and handed to the case store (see records_*)",
            m.violations.clone(),
        );
        registry.register(
            "camera_state",
            "1 for the state the camera is in",
            m.state.clone(),
        );
        registry.register(
            "camera_last_frame_age_seconds",
            "Seconds since the camera's last frame",
            m.last_frame_age.clone(),
        );
        registry.register(
            "camera_queue_depth",
            "Frames waiting for inference",
            m.queue.clone(),
        );
        registry.register(
            "inference_seconds",
            "Time to analyse one frame (detector, tracker, rules)",
            m.inference.clone(),
        );
        registry.register(
            "records_recorded",
            "Cases and plate reads taken by their stores",
            m.recorder.recorded.clone(),
        );
        registry.register(
            "records_refused",
            "Attempts a store refused (each is retried)",
            m.recorder.refused.clone(),
        );
        registry.register(
            "records_waiting",
            "Cases and plate reads in memory, not yet taken by their stores",
            m.recorder.waiting.clone(),
        );
        registry.register(
            "records_spooled",
            "Cases and plate reads written to the spool folder while their store was behind or at a stop",
            m.recorder.spooled.clone(),
        );
        Self { registry, ..m }
    }

    fn label(id: &str) -> CameraLabel {
        CameraLabel {
            camera: id.to_string(),
        }
    }

    fn refresh(&self, statuses: &[(CameraStatus, usize)]) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (s, queued) in statuses {
            let l = Self::label(&s.id);
            let prev = seen.entry(s.id.clone()).or_default();
            self.frames
                .get_or_create(&l)
                .inc_by(s.frames_in.saturating_sub(prev.0));
            self.dropped
                .get_or_create(&l)
                .inc_by(s.frames_dropped.saturating_sub(prev.1));
            self.reconnects
                .get_or_create(&l)
                .inc_by(s.reconnects.saturating_sub(prev.2));
            *prev = (s.frames_in, s.frames_dropped, s.reconnects);
            for name in ["connecting", "streaming", "stalled", "failed", "stopped"] {
                self.state
                    .get_or_create(&StateLabel {
                        camera: s.id.clone(),
                        state: name.into(),
                    })
                    .set((s.state.name() == name) as i64);
            }
            self.last_frame_age.get_or_create(&l).set(
                s.last_frame
                    .map(|t| t.elapsed().as_secs_f64())
                    .unwrap_or(f64::NAN),
            );
            self.queue.get_or_create(&l).set(*queued as i64);
        }
    }
}

#[derive(Clone)]
pub struct RunnerSettings {
    pub evidence_root: PathBuf,
    pub models_path: PathBuf,
    pub key: Arc<EvidenceKey>,
    pub sink: EventSink,
    pub sightings: SightingSink,
}

pub struct LiveRunner {
    slots: Arc<Vec<Slot>>,
    stop: Arc<AtomicBool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
}

impl LiveRunner {
    /// Start every camera and the inference workers. Models are loaded (and checked) here,
    /// before any camera connects.
    pub fn start(deployment: Deployment, settings: RunnerSettings) -> Result<Self, LiveError> {
        let run = &deployment.run;
        let mut worker_models = Vec::new();
        for _ in 0..run.inference_workers {
            worker_models.push(
                Models::load(&settings.models_path).map_err(|e| LiveError::Gst(e.to_string()))?,
            );
        }
        let mut slots = Vec::new();
        for spec in deployment.cameras {
            let camera = LiveCamera::start(spec.settings)?;
            slots.push(Slot {
                camera,
                latest: Mutex::new(None),
                state: Mutex::new(SlotState {
                    analyzer: Analyzer::new(spec.config.clone(), AnalyzerSettings::default()),
                    gate: MotionGate::default(),
                    started_at: Utc::now(),
                    pending: Vec::new(),
                }),
                config: spec.config,
            });
        }
        let slots = Arc::new(slots);
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(Metrics::new());
        // Beside the evidence folder: records wait there when their store is behind.
        let recorder = Arc::new(
            Recorder::start(
                settings.sink.clone(),
                settings.sightings.clone(),
                RecorderSettings::new(settings.evidence_root.with_file_name("unrecorded")),
                metrics.recorder.clone(),
            )
            .map_err(LiveError::Gst)?,
        );
        let clip_before = Duration::from_secs_f64(run.clip_before_seconds.max(0.0));
        let clip_after = Duration::from_secs_f64(run.clip_after_seconds.max(0.0));
        let gating = run.motion_gating;
        let mut workers = Vec::new();
        for (n, mut models) in worker_models.into_iter().enumerate() {
            let (slots, stop, metrics, settings) = (
                slots.clone(),
                stop.clone(),
                metrics.clone(),
                settings.clone(),
            );
            let worker = Worker {
                model_info: models.info.clone(),
                clip_before,
                clip_after,
                gating,
                settings,
                metrics,
                recorder: recorder.clone(),
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("inference-{n}"))
                    .spawn(move || worker.run(&slots, &mut models, &stop, n))
                    .map_err(|e| LiveError::Gst(format!("cannot start inference worker: {e}")))?,
            );
        }
        Ok(Self {
            slots,
            stop,
            workers: Mutex::new(workers),
            metrics,
            recorder,
        })
    }

    /// Each camera's configuration, in the deployment's order.
    pub fn configs(&self) -> Vec<CameraConfig> {
        self.slots.iter().map(|s| s.config.clone()).collect()
    }

    /// The last frame each camera delivered for analysis (gated or not), by camera id.
    pub fn latest_frame(&self, camera_id: &str) -> Option<Arc<image::RgbImage>> {
        self.slots
            .iter()
            .find(|s| s.config.id == camera_id)
            .and_then(|s| s.latest.lock().ok().and_then(|l| l.clone()))
    }

    pub fn statuses(&self) -> Vec<CameraStatus> {
        self.slots.iter().map(|s| s.camera.status()).collect()
    }

    /// What each camera's analysis did so far.
    pub fn analysis_counts(&self) -> Vec<AnalysisCounts> {
        self.slots
            .iter()
            .map(|s| {
                let l = Metrics::label(&s.config.id);
                AnalysisCounts {
                    camera: s.config.id.clone(),
                    analysed: self.metrics.analysed.get_or_create(&l).get(),
                    skipped: self.metrics.skipped.get_or_create(&l).get(),
                    regions: self.metrics.regions.get_or_create(&l).get(),
                    coasted: self.metrics.coasted.get_or_create(&l).get(),
                    violations: self.metrics.violations.get_or_create(&l).get(),
                }
            })
            .collect()
    }

    /// Prometheus text exposition of the metrics.
    pub fn metrics_text(&self) -> String {
        let statuses: Vec<(CameraStatus, usize)> = self
            .slots
            .iter()
            .map(|s| (s.camera.status(), s.camera.queued()))
            .collect();
        self.metrics.refresh(&statuses);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.metrics.registry);
        out
    }

    /// Stop taking frames, finish every pending violation with the video there is (clip
    /// cut short rather than lost), then stop the cameras.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let workers: Vec<_> = self
            .workers
            .lock()
            .map(|mut w| w.drain(..).collect())
            .unwrap_or_default();
        for w in workers {
            let _ = w.join();
        }
        for slot in self.slots.iter() {
            slot.camera.stop();
        }
        let flushed = self.recorder.finish();
        if flushed.spooled > 0 {
            tracing::warn!(
                records = flushed.spooled,
                "cases and plate reads not yet recorded are kept in the spool folder; the next start records them"
            );
        }
    }
}

struct Worker {
    model_info: Vec<crate::analyzer::ModelInfo>,
    clip_before: Duration,
    clip_after: Duration,
    gating: bool,
    settings: RunnerSettings,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
}

impl Worker {
    fn run(&self, slots: &[Slot], models: &mut Models, stop: &AtomicBool, n: usize) {
        let mut start = n;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            let mut busy = false;
            let mut left = 0;
            for i in 0..slots.len() {
                let slot = &slots[(start + i) % slots.len()];
                let Ok(mut state) = slot.state.try_lock() else {
                    left += 1;
                    continue;
                };
                self.finish_due(slot, &mut state, stopping);
                left += state.pending.len();
                if stopping {
                    continue;
                }
                if let Some(frame) = slot.camera.next_frame() {
                    busy = true;
                    self.analyse(slot, &mut state, models, frame);
                }
            }
            start = start.wrapping_add(1);
            if stopping && left == 0 {
                break;
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn analyse(
        &self,
        slot: &Slot,
        state: &mut SlotState,
        models: &mut Models,
        frame: crate::frame::Frame,
    ) {
        let label = Metrics::label(&slot.config.id);
        if let Ok(mut latest) = slot.latest.lock() {
            *latest = Some(frame.image.clone());
        }
        if frame.index == 0 {
            // A new connection: a new timeline, so tracks and gating start again.
            state.analyzer = Analyzer::new(slot.config.clone(), AnalyzerSettings::default());
            state.gate.reset();
            state.started_at =
                Utc::now() - chrono::Duration::from_std(frame.pts).unwrap_or_default();
            state.analyzer.set_started_at(state.started_at);
        }
        let look = state.analyzer.look(
            self.gating.then_some(&mut state.gate),
            &frame,
            &models.vehicle,
        );
        match &look {
            Look::Skip => {
                self.metrics.skipped.get_or_create(&label).inc();
                return;
            }
            Look::Coast => {
                self.metrics.coasted.get_or_create(&label).inc();
                // Only the signal is read: no detector run, nothing to time or emit.
                if let Err(e) = state.analyzer.process_looking(models, frame, look) {
                    tracing::error!(camera = %slot.config.id, error = %e, "analysis failed");
                }
                return;
            }
            Look::Regions(_) => {
                self.metrics.regions.get_or_create(&label).inc();
            }
            Look::Whole => {}
        }
        let t = Instant::now();
        let result = state.analyzer.process_looking(models, frame, look);
        let thumbnails = self
            .settings
            .evidence_root
            .with_file_name("sightings")
            .join(&slot.config.id);
        for s in state.analyzer.take_sightings() {
            let mut record = crate::batch::sighting(
                &slot.config,
                &format!("live:{}", state.started_at.to_rfc3339()),
                &slot.camera.status().url,
                state.started_at,
                &s,
                &thumbnails,
            );
            // A live stream keeps no recording to seek in.
            record.video_offset_ms = None;
            self.recorder.submit(Record::Sighting(record));
        }
        self.metrics.inference.observe(t.elapsed().as_secs_f64());
        self.metrics.analysed.get_or_create(&label).inc();
        match result {
            Ok(findings) => {
                for finding in findings {
                    tracing::info!(camera = %slot.config.id, t = ?finding.violation.pts, "violation; waiting for the end of its clip");
                    state.pending.push(Pending {
                        until: finding.violation.pts + self.clip_after,
                        deadline: Instant::now() + self.clip_after + Duration::from_secs(10),
                        started_at: state.started_at,
                        finding,
                    });
                }
            }
            Err(e) => {
                tracing::error!(camera = %slot.config.id, error = %e, "analysis failed on a frame")
            }
        }
    }

    fn finish_due(&self, slot: &Slot, state: &mut SlotState, stopping: bool) {
        let ring_end = slot.camera.ring_end();
        let mut keep = Vec::new();
        for p in std::mem::take(&mut state.pending) {
            let due = stopping
                || Instant::now() >= p.deadline
                || ring_end.is_some_and(|end| end >= p.until);
            if !due {
                keep.push(p);
                continue;
            }
            match self.record(slot, &p) {
                Ok(()) => {
                    self.metrics
                        .violations
                        .get_or_create(&Metrics::label(&slot.config.id))
                        .inc();
                }
                Err(e) => {
                    tracing::error!(camera = %slot.config.id, error = %e, "violation could not be recorded")
                }
            }
        }
        state.pending = keep;
    }

    fn record(&self, slot: &Slot, p: &Pending) -> Result<(), String> {
        let camera = &slot.config;
        let id = event_id(
            &camera.id,
            &format!("live:{}", p.started_at.to_rfc3339()),
            &p.finding,
        );
        let root = &self.settings.evidence_root;
        std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let from = p.finding.violation.pts.saturating_sub(self.clip_before);
        let clip_path = root.join(format!(".{id}.clip.mp4"));
        let clip = match slot.camera.clip(from, p.until) {
            Some((caps, units)) => {
                let starts_at = Duration::from_nanos(units[0].pts.nseconds());
                match write_clip(&units, &caps, &clip_path) {
                    Ok(sha) => Some((sha, starts_at)),
                    Err(e) => {
                        tracing::warn!(camera = %camera.id, error = %e, "no clip for this violation");
                        None
                    }
                }
            }
            None => {
                tracing::warn!(camera = %camera.id, "the ring buffer no longer holds this violation's video");
                None
            }
        };
        let source = SourceInfo {
            uri: slot.camera.status().url,
            sha256: clip.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
            started_at: p.started_at,
        };
        let package = evidence::write_package(
            root,
            id,
            camera,
            &source,
            &self.model_info,
            &p.finding,
            &self.settings.key,
            clip.as_ref().map(|(_, starts_at)| ClipFile {
                path: &clip_path,
                starts_at: *starts_at,
            }),
        )
        .map_err(|e| e.to_string())?;
        let event = violation_event(camera, id, p.started_at, &p.finding, &package, &source.uri);
        // Handed over: the recorder retries a refusing store and spools what it cannot hold.
        self.recorder.submit(Record::Case(event));
        Ok(())
    }
}

impl Drop for LiveRunner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether a camera is up, for `/healthz`.
pub fn is_streaming(s: &CameraStatus) -> bool {
    s.state == CameraState::Streaming
}
