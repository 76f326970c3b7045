//! `vigil run`: many live cameras in one process. Each camera decodes on its own
//! (GStreamer threads); inference is shared: `inference_workers` threads, each with its
//! own models, take frames from the cameras' bounded queues in turn. A camera's frames are
//! analysed in order (its analysis state is held by one worker at a time). A violation
//! waits until the camera's video holds its clip's end, then the [`Publisher`] cuts the
//! clip and writes the signed package, and the [`Recorder`] takes the event to the store.
//!
//! Cameras come from a [`CameraOpener`]: RTSP in a deployment; in tests, anything that
//! gives frames and clips. Every wait is on the injected clock.

pub mod deployment;
mod metrics;
mod retention;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vigil_core::{Admission, Admit, Always, Clock, DataDir, EventSink};

use crate::analysis::inference::{SharedDetector, shared_vehicle_detector};
use crate::analysis::{Analyzer, AnalyzerSettings, Finding, Look, ModelInfo, Models};
use crate::config::CameraConfig;
use crate::output::orphans;
use crate::output::publisher::{Publisher, Source};
use crate::output::recorder::{self, Record, Recorder, RecorderError, RecorderSettings};
use crate::source::clip::ClipSource;
use crate::source::rtsp::{CameraState, CameraStatus, FootageSettings, LiveCamera};
use crate::source::{FrameSource, SourceError};
use deployment::{Deployment, LiveCameraSpec};
use metrics::Metrics;
use vigil_evidence::EvidenceKey;

/// How long past its clip's end a violation waits for video that does not come (a camera
/// that stopped sending) before it is published with the clip there is.
const CLIP_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("models: {0}")]
    Models(#[from] vigil_models::ModelError),
    #[error(transparent)]
    Recorder(#[from] RecorderError),
    #[error("cannot start inference worker: {0}")]
    Worker(std::io::Error),
    #[error("camera `{0}` runs here already")]
    Duplicate(String),
    #[error(
        "camera `{0}` needs the no-helmet model, which this worker did not load (run `scripts/setup --helmet` where it runs)"
    )]
    NoHelmetModel(String),
}

/// What an operator sees of a camera, whatever it is behind.
pub trait CameraMonitor: Send + Sync {
    fn status(&self) -> CameraStatus;
    /// Analysis frames waiting.
    fn queued(&self) -> usize;
    /// Disconnect for good.
    fn stop(&self);
}

impl CameraMonitor for LiveCamera {
    fn status(&self) -> CameraStatus {
        LiveCamera::status(self)
    }

    fn queued(&self) -> usize {
        LiveCamera::queued(self)
    }

    fn stop(&self) {
        LiveCamera::stop(self)
    }
}

/// A camera, opened: its frames, its video for clips, and its state.
pub struct OpenCamera {
    pub frames: Box<dyn FrameSource>,
    pub clips: Arc<dyn ClipSource>,
    pub monitor: Arc<dyn CameraMonitor>,
}

/// How the runner connects its cameras.
pub trait CameraOpener: Send + Sync {
    fn open(&self, spec: &LiveCameraSpec, clock: Arc<dyn Clock>)
    -> Result<OpenCamera, SourceError>;
}

/// Cameras over RTSP, reconnecting for as long as they run.
pub struct RtspOpener;

impl CameraOpener for RtspOpener {
    fn open(
        &self,
        spec: &LiveCameraSpec,
        clock: Arc<dyn Clock>,
    ) -> Result<OpenCamera, SourceError> {
        let camera = Arc::new(LiveCamera::start(spec.settings.clone(), clock)?);
        Ok(OpenCamera {
            frames: Box::new(camera.frames()),
            clips: Arc::new(camera.clips()),
            monitor: camera,
        })
    }
}

struct Pending {
    finding: Finding,
    source: Source,
    /// Stream time up to which the clip should run.
    until: Duration,
    /// Give up waiting for the clip's end then (monotonic time).
    deadline: Duration,
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
    frames: Box<dyn FrameSource>,
    analyzer: Analyzer,
    started_at: DateTime<Utc>,
    pending: Vec<Pending>,
}

struct Slot {
    config: CameraConfig,
    /// The camera's URL as it may be shown (no credentials), for evidence and sightings.
    uri: String,
    monitor: Arc<dyn CameraMonitor>,
    clips: Arc<dyn ClipSource>,
    state: Mutex<SlotState>,
    /// Apart from `state`, which a worker holds while it analyses: the cameras page asks
    /// for this at any time.
    latest: Mutex<Option<Arc<image::RgbImage>>>,
    /// Whether what it finds may leave this worker (a fleet's lease).
    admission: Arc<dyn Admission>,
    /// Records held back until the lease's fate is known.
    held: Mutex<Vec<Record>>,
    /// Being removed: no new analysis; gone once its violations have their clips.
    leaving: AtomicBool,
}

/// The moment a record is of, which its camera's lease admits or not.
fn record_time(record: &Record) -> DateTime<Utc> {
    match record {
        Record::Case(e) => e.occurred_at,
        Record::Sighting(s) => s.seen_at,
    }
}

pub struct RunnerSettings {
    pub data: DataDir,
    pub models_path: PathBuf,
    pub key: Arc<EvidenceKey>,
    /// Where cases and plate reads go (through the recorder).
    pub sink: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    /// Load every installed model, for cameras added later (a fleet's worker), rather
    /// than those the deployment's cameras need.
    pub any_camera: bool,
}

/// What an earlier run that died left: pieces of packages removed, and each package whose
/// case never reached the store handed over again (its event made from its manifest).
fn recover(data: &DataDir, recorder: &Recorder) {
    let evidence = data.evidence();
    orphans::clean_leftovers(&evidence);
    let journaled = recorder::journaled_events(&data.unrecorded());
    for dir in orphans::unrecorded_packages(&evidence, &data.handed_over(), &journaled) {
        match orphans::event_of_package(&dir) {
            Ok(event) => {
                tracing::warn!(event = %event.event_id, package = %dir.display(), "a package whose case never reached the store: handing it over again");
                recorder.submit(Record::Case(event));
            }
            Err(e) => {
                tracing::error!(package = %dir.display(), error = %e, "a package whose case never reached the store cannot be read; left for a person")
            }
        }
    }
}

type Slots = Arc<RwLock<Vec<Arc<Slot>>>>;

pub struct LiveRunner {
    slots: Slots,
    stop: Arc<AtomicBool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
    opener: Arc<dyn CameraOpener>,
    clock: Arc<dyn Clock>,
    gating: bool,
    /// Whether the no-helmet model was loaded (a camera that needs it runs only then).
    heads: bool,
    /// Where cameras are recorded continuously, when the deployment asks.
    recording: Option<Recording>,
}

/// Continuous recording of the cameras that record: segments of `segment` under `root`,
/// one folder per camera, and the days each camera that has its own keeps (read by the
/// retention round; cameras come and go on a fleet's worker).
#[derive(Clone)]
struct Recording {
    root: PathBuf,
    segment: Duration,
    days: Arc<RwLock<HashMap<String, f64>>>,
    policy: crate::footage::retention::RetentionPolicy,
    /// Retention runs from the first camera that records (a thread sleeping on the
    /// runner's clock has no business in a runner that records nothing).
    retention_started: Arc<AtomicBool>,
}

impl Recording {
    /// The retention round, if it is not running yet.
    fn start_retention(
        &self,
        stop: &Arc<AtomicBool>,
        clock: &Arc<dyn Clock>,
    ) -> Result<Option<JoinHandle<()>>, LiveError> {
        if self.retention_started.swap(true, Ordering::SeqCst) {
            return Ok(None);
        }
        retention::start(
            self.root.clone(),
            self.policy.clone(),
            self.days.clone(),
            self.segment,
            stop.clone(),
            clock.clone(),
        )
        .map(Some)
    }
}

impl LiveRunner {
    /// Start every camera over RTSP and the inference workers.
    pub fn start(deployment: Deployment, settings: RunnerSettings) -> Result<Self, LiveError> {
        Self::start_with(deployment, settings, Arc::new(RtspOpener))
    }

    /// Start every camera through `opener`, and the inference workers. Models are loaded
    /// (and checked) here, before any camera connects.
    pub fn start_with(
        deployment: Deployment,
        settings: RunnerSettings,
        opener: Arc<dyn CameraOpener>,
    ) -> Result<Self, LiveError> {
        let run = &deployment.run;
        // An NVDEC decoder asked for where GStreamer cannot make one stops the start, named,
        // rather than every camera failing to connect one after another.
        if let Ok(decoder) = run.decoder() {
            decoder.check()?;
        }
        let mut worker_models = Vec::new();
        for _ in 0..run.inference_workers {
            worker_models.push(if settings.any_camera {
                Models::load_every(&settings.models_path)?
            } else {
                Models::load_for(
                    &settings.models_path,
                    deployment.cameras.iter().map(|spec| &spec.config),
                )?
            });
        }
        let heads = worker_models
            .first_mut()
            .is_some_and(|m| m.helmet().is_ok());
        let model_info: Vec<ModelInfo> = worker_models
            .first()
            .map(|m| m.info.clone())
            .unwrap_or_default();
        let clock = settings.clock.clone();
        let gating = run.motion_gating;
        // Always ready: a camera may record though `[run] record` is off (its own
        // `record`, or a fleet camera's), and retention then keeps its footage in bounds.
        let recording = Some(Recording {
            root: settings.data.footage(),
            segment: Duration::from_secs_f64(run.record_segment_seconds),
            days: Arc::new(RwLock::new(HashMap::new())),
            policy: run.retention_policy(),
            retention_started: Arc::new(AtomicBool::new(false)),
        });
        let mut slots = Vec::new();
        for spec in &deployment.cameras {
            slots.push(Arc::new(open_slot(
                opener.as_ref(),
                spec,
                clock.clone(),
                gating,
                Arc::new(Always),
                recording.as_ref(),
            )?));
        }
        let slots: Slots = Arc::new(RwLock::new(slots));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        if let Some(r) = &recording
            && deployment
                .cameras
                .iter()
                .any(|c| c.settings.record.is_some())
        {
            workers.extend(r.start_retention(&stop, &clock)?);
        }
        let metrics = Arc::new(Metrics::new());
        let shared = match run.batching() {
            None => None,
            Some(batching) => {
                let observed = metrics.batch_size.clone();
                Some(Arc::new(shared_vehicle_detector(
                    &settings.models_path,
                    batching,
                    Some(Box::new(move |n| observed.observe(n as f64))),
                )?))
            }
        };
        let recorder = Arc::new(Recorder::start(
            settings.sink.clone(),
            RecorderSettings {
                handed_over: Some(settings.data.handed_over()),
                ..RecorderSettings::new(settings.data.unrecorded())
            },
            metrics.recorder.clone(),
            clock.clone(),
        )?);
        recover(&settings.data, &recorder);
        let publisher = Arc::new(Publisher::new(
            settings.data.clone(),
            settings.key.clone(),
            model_info,
            run.clip_window(),
        ));
        for (n, mut models) in worker_models.into_iter().enumerate() {
            let worker = Worker {
                slots: slots.clone(),
                stop: stop.clone(),
                publisher: publisher.clone(),
                gating,
                shared: shared.clone(),
                metrics: metrics.clone(),
                recorder: recorder.clone(),
                clock: clock.clone(),
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("inference-{n}"))
                    .spawn(move || worker.run(&mut models, n))
                    .map_err(LiveError::Worker)?,
            );
        }
        Ok(Self {
            slots,
            stop,
            workers: Mutex::new(workers),
            metrics,
            recorder,
            opener,
            clock,
            gating,
            heads,
            recording,
        })
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        snapshot(&self.slots)
    }

    /// Start a camera while the others run (a fleet gave it to this worker); what it
    /// finds leaves as `admission` admits.
    pub fn add_camera(
        &self,
        spec: &LiveCameraSpec,
        admission: Arc<dyn Admission>,
    ) -> Result<(), LiveError> {
        let id = &spec.config.id;
        if self.slots().iter().any(|s| s.config.id == *id) {
            return Err(LiveError::Duplicate(id.clone()));
        }
        let needs_heads = spec.config.rules().iter().any(|(_, r)| r.needs_heads());
        if needs_heads && !self.heads {
            return Err(LiveError::NoHelmetModel(id.clone()));
        }
        let slot = open_slot(
            self.opener.as_ref(),
            spec,
            self.clock.clone(),
            self.gating,
            admission,
            self.recording.as_ref(),
        )?;
        if let Ok(mut slots) = self.slots.write() {
            slots.push(Arc::new(slot));
        }
        if let Some(r) = &self.recording
            && spec.settings.record.is_some()
            && let Some(retention) = r.start_retention(&self.stop, &self.clock)?
            && let Ok(mut workers) = self.workers.lock()
        {
            workers.push(retention);
        }
        tracing::info!(camera = %id, "camera added");
        Ok(())
    }

    /// Stop a camera while the others run: no new analysis; it goes once its violations
    /// waiting for their clips are published (at most `within`, then with the video there
    /// is). Returns once it is gone.
    pub fn remove_camera(&self, camera_id: &str, within: Duration) {
        let Some(slot) = self.slots().into_iter().find(|s| s.config.id == camera_id) else {
            return;
        };
        slot.leaving.store(true, Ordering::SeqCst);
        let deadline = self.clock.monotonic() + within;
        while self.slots().iter().any(|s| Arc::ptr_eq(s, &slot)) {
            if self.clock.monotonic() >= deadline || self.stop.load(Ordering::SeqCst) {
                break;
            }
            self.clock.sleep(Duration::from_millis(20));
        }
        if let Ok(mut slots) = self.slots.write() {
            slots.retain(|s| !Arc::ptr_eq(s, &slot));
        }
        slot.monitor.stop();
        release_held(&slot, &self.recorder, true);
        tracing::info!(camera = %camera_id, "camera removed");
    }

    /// Each camera's configuration, in the deployment's order.
    pub fn configs(&self) -> Vec<CameraConfig> {
        self.slots().iter().map(|s| s.config.clone()).collect()
    }

    /// The last frame each camera delivered for analysis (gated or not), by camera id.
    pub fn latest_frame(&self, camera_id: &str) -> Option<Arc<image::RgbImage>> {
        self.slots()
            .iter()
            .find(|s| s.config.id == camera_id)
            .and_then(|s| s.latest.lock().ok().and_then(|l| l.clone()))
    }

    pub fn statuses(&self) -> Vec<CameraStatus> {
        self.slots().iter().map(|s| s.monitor.status()).collect()
    }

    /// What each camera's analysis did so far.
    pub fn analysis_counts(&self) -> Vec<AnalysisCounts> {
        self.slots()
            .iter()
            .map(|s| {
                let l = Metrics::label(&s.config.id);
                let m = &self.metrics;
                AnalysisCounts {
                    camera: s.config.id.clone(),
                    analysed: m.analysed.get_or_create(&l).get(),
                    skipped: m.skipped.get_or_create(&l).get(),
                    regions: m.regions.get_or_create(&l).get(),
                    coasted: m.coasted.get_or_create(&l).get(),
                    violations: m.violations.get_or_create(&l).get(),
                }
            })
            .collect()
    }

    /// Prometheus text exposition of the metrics.
    pub fn metrics_text(&self) -> String {
        let statuses: Vec<(CameraStatus, usize)> = self
            .slots()
            .iter()
            .map(|s| (s.monitor.status(), s.monitor.queued()))
            .collect();
        self.metrics.text(&statuses)
    }

    /// Stop taking frames, finish every pending violation with the video there is (clip
    /// cut short rather than lost), then stop the cameras and the recorder.
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
        for slot in self.slots() {
            slot.monitor.stop();
            // Nothing lost at a stop: whether held records were another worker's to send
            // is not known, and the case store merges a violation seen twice.
            release_held(&slot, &self.recorder, true);
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

impl Drop for LiveRunner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn snapshot(slots: &Slots) -> Vec<Arc<Slot>> {
    slots.read().map(|s| s.clone()).unwrap_or_default()
}

fn open_slot(
    opener: &dyn CameraOpener,
    spec: &LiveCameraSpec,
    clock: Arc<dyn Clock>,
    gating: bool,
    admission: Arc<dyn Admission>,
    recording: Option<&Recording>,
) -> Result<Slot, LiveError> {
    let camera = match (recording, spec.settings.record) {
        (Some(r), Some(stream)) => {
            let folder = vigil_core::data_dir::file_name_of(&spec.config.id);
            if let Some(days) = spec.settings.footage_days
                && let Ok(mut all) = r.days.write()
            {
                all.insert(folder.clone(), days);
            }
            let mut settings = spec.settings.clone();
            settings.footage = Some(FootageSettings {
                dir: r.root.join(folder),
                segment: r.segment,
                stream,
            });
            let recorded = LiveCameraSpec {
                config: spec.config.clone(),
                settings,
            };
            opener.open(&recorded, clock.clone())?
        }
        _ => opener.open(spec, clock.clone())?,
    };
    Ok(Slot {
        state: Mutex::new(SlotState {
            frames: camera.frames,
            analyzer: new_analyzer(&spec.config, gating, &clock),
            started_at: clock.now(),
            pending: Vec::new(),
        }),
        uri: camera.monitor.status().url,
        monitor: camera.monitor,
        clips: camera.clips,
        latest: Mutex::new(None),
        config: spec.config.clone(),
        admission,
        held: Mutex::new(Vec::new()),
        leaving: AtomicBool::new(false),
    })
}

/// Send what a camera held back that its lease now admits, drop what it never will;
/// `all`: send whatever is not refused (the camera is going).
fn release_held(slot: &Slot, recorder: &Recorder, all: bool) {
    let Ok(mut held) = slot.held.lock() else {
        return;
    };
    if held.is_empty() {
        return;
    }
    let mut keep = Vec::new();
    for record in held.drain(..) {
        match slot.admission.admit(record_time(&record)) {
            Admit::Now => recorder.submit(record),
            Admit::Hold if all => recorder.submit(record),
            Admit::Hold => keep.push(record),
            Admit::Never => {
                tracing::info!(camera = %slot.config.id, record = %record, "not sent: another worker ran the camera then")
            }
        }
    }
    *held = keep;
}

fn new_analyzer(config: &CameraConfig, gating: bool, clock: &Arc<dyn Clock>) -> Analyzer {
    let settings = AnalyzerSettings {
        motion_gating: gating,
        ..AnalyzerSettings::default()
    };
    Analyzer::new(config.clone(), settings, clock.clone())
}

struct Worker {
    slots: Slots,
    stop: Arc<AtomicBool>,
    publisher: Arc<Publisher>,
    gating: bool,
    /// The vehicle detector every camera's looks go through, where looks are batched
    /// across cameras; otherwise the worker's own runs them.
    shared: Option<Arc<SharedDetector>>,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
    clock: Arc<dyn Clock>,
}

impl Worker {
    fn run(&self, models: &mut Models, n: usize) {
        let mut start = n;
        loop {
            let slots = snapshot(&self.slots);
            let stopping = self.stop.load(Ordering::SeqCst);
            let mut busy = false;
            let mut left = 0;
            for i in 0..slots.len() {
                let slot = &slots[(start + i) % slots.len()];
                let Ok(mut state) = slot.state.try_lock() else {
                    left += 1;
                    continue;
                };
                self.finish_due(slot, &mut state, stopping);
                release_held(slot, &self.recorder, false);
                left += state.pending.len();
                if stopping {
                    continue;
                }
                if slot.leaving.load(Ordering::SeqCst) {
                    // Its clips still need the camera's video; its frames go unanalysed.
                    while let Ok(Some(_)) = state.frames.next_frame() {}
                    if state.pending.is_empty()
                        && let Ok(mut all) = self.slots.write()
                    {
                        all.retain(|s| !Arc::ptr_eq(s, slot));
                    }
                    continue;
                }
                match state.frames.next_frame() {
                    Ok(Some(frame)) => {
                        busy = true;
                        self.analyse(slot, &mut state, models, frame);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(camera = %slot.config.id, error = %e, "no frame"),
                }
            }
            start = start.wrapping_add(1);
            if stopping && left == 0 {
                break;
            }
            if !busy {
                self.clock.sleep(Duration::from_millis(5));
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
            state.analyzer = new_analyzer(&slot.config, self.gating, &self.clock);
            state.started_at =
                self.clock.now() - chrono::Duration::from_std(frame.pts).unwrap_or_default();
            state.analyzer.set_started_at(state.started_at);
        }
        let source = || Source {
            uri: slot.uri.clone(),
            started_at: state.started_at,
            recording_sha256: None,
        };
        // Compute time, for the histogram: measured, not waited on.
        let t = Instant::now();
        let analysed = match &self.shared {
            Some(shared) => state
                .analyzer
                .analyse_through(models, frame, &mut shared.as_ref()),
            None => state.analyzer.analyse(models, frame),
        };
        let analysed = match analysed {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(camera = %slot.config.id, error = %e, "analysis failed on a frame");
                return;
            }
        };
        match &analysed.look {
            Look::Skip => {
                self.metrics.skipped.get_or_create(&label).inc();
                return;
            }
            // Only the signal was read: no detector run, nothing to time or emit.
            Look::Coast => {
                self.metrics.coasted.get_or_create(&label).inc();
                return;
            }
            Look::Regions(_) => {
                self.metrics.regions.get_or_create(&label).inc();
            }
            Look::Whole => {}
        }
        for s in state.analyzer.take_sightings() {
            let record = self.publisher.sighting(&slot.config, &source(), &s);
            self.emit(slot, Record::Sighting(record));
        }
        self.metrics.inference.observe(t.elapsed().as_secs_f64());
        self.metrics.analysed.get_or_create(&label).inc();
        for finding in analysed.findings {
            tracing::info!(camera = %slot.config.id, t = ?finding.violation.pts, "violation; waiting for the end of its clip");
            let until = self.publisher.clip_end(&finding);
            state.pending.push(Pending {
                deadline: self.clock.monotonic() + self.publisher.clip.after + CLIP_PATIENCE,
                until,
                source: source(),
                finding,
            });
        }
    }

    /// Hand a record to the recorder if the camera's lease admits it.
    fn emit(&self, slot: &Slot, record: Record) {
        match slot.admission.admit(record_time(&record)) {
            Admit::Now => self.recorder.submit(record),
            Admit::Hold => {
                if let Ok(mut held) = slot.held.lock() {
                    held.push(record);
                }
            }
            Admit::Never => {
                tracing::info!(camera = %slot.config.id, record = %record, "not sent: this worker no longer runs the camera")
            }
        }
    }

    fn finish_due(&self, slot: &Slot, state: &mut SlotState, stopping: bool) {
        let held = slot.clips.held_until();
        let now = self.clock.monotonic();
        let mut keep = Vec::new();
        for p in std::mem::take(&mut state.pending) {
            let due = stopping || now >= p.deadline || held.is_some_and(|end| end >= p.until);
            if !due {
                keep.push(p);
                continue;
            }
            match self
                .publisher
                .publish(&slot.config, &p.source, &p.finding, slot.clips.as_ref())
            {
                Ok(event) => {
                    // Handed over: the recorder retries a refusing store and spools what
                    // it cannot hold.
                    self.emit(slot, Record::Case(event));
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
}

/// Whether a camera is up, for `/healthz`.
pub fn is_streaming(s: &CameraStatus) -> bool {
    s.state == CameraState::Streaming
}
