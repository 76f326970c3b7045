//! One live camera: `rtspsrc` → depay/parse → `tee` into (a) decode → rate/scale → RGB
//! frames for analysis and (b) the compressed ring buffer for clips. A supervisor thread
//! keeps it connected: a failure or a stall tears the pipeline down and reconnects with
//! capped exponential backoff and jitter, for as long as the camera is configured. Frames
//! wait in a bounded queue; when analysis falls behind, the oldest are dropped and counted,
//! so decoding never blocks and memory never grows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::ring::RingBuffer;
use super::{AccessUnit, LiveError};
use crate::frame::Frame;
use crate::source::{init_gstreamer, rgb_from_sample};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub id: String,
    /// `rtsp://host[:port]/path`; credentials in it are moved to `username`/`password`.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
    pub analysis_fps: u32,
    /// The camera's main stream, for evidence clips; without it, clips come from `url`.
    /// Credentials are those above unless the URL carries its own.
    pub evidence_url: Option<String>,
    /// Scale analysis frames to this size (the size the camera's geometry is drawn in).
    pub frame_size: Option<(u32, u32)>,
    /// No analysis frame for this long while streaming: stalled, reconnect.
    pub stall_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Compressed video kept for clips.
    pub ring: Duration,
    pub ring_max_bytes: usize,
    /// Analysis frames waiting for the detector; beyond this the oldest are dropped.
    pub queue_frames: usize,
}

impl LiveSettings {
    pub fn new(id: &str, url: &str) -> Self {
        Self {
            id: id.to_string(),
            url: url.to_string(),
            username: None,
            password: None,
            transport: Transport::Tcp,
            analysis_fps: 5,
            frame_size: None,
            evidence_url: None,
            stall_after: Duration::from_secs(5),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(4),
            ring: Duration::from_secs(10),
            ring_max_bytes: 32 << 20,
            queue_frames: 10,
        }
    }
}

/// A camera URL split into what may be shown and what may not.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraUrl {
    /// Without credentials: safe for logs, states and evidence.
    pub shown: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

pub fn parse_camera_url(url: &str) -> Result<CameraUrl, LiveError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| LiveError::Gst(format!("camera URL `{}`: {e}", redact(url))))?;
    if !matches!(parsed.scheme(), "rtsp" | "rtsps") {
        return Err(LiveError::Gst(format!(
            "camera URL `{}`: the scheme must be rtsp or rtsps",
            redact(url)
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(LiveError::Gst(format!(
            "camera URL `{}` has no host",
            redact(url)
        )));
    }
    let username = (!parsed.username().is_empty()).then(|| percent_decode(parsed.username()));
    let password = parsed.password().map(percent_decode);
    let mut shown = parsed.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    Ok(CameraUrl {
        shown: shown.to_string(),
        username,
        password,
    })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL with any password replaced, for messages about a URL that did not parse.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    Connecting,
    Streaming,
    /// No frame for `stall_after`; about to reconnect.
    Stalled,
    /// The last attempt failed, for this reason; retried after a backoff.
    Failed(String),
    Stopped,
}

impl CameraState {
    pub fn name(&self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Stalled => "stalled",
            CameraState::Failed(_) => "failed",
            CameraState::Stopped => "stopped",
        }
    }
}

/// What an operator sees of a camera.
#[derive(Debug, Clone)]
pub struct CameraStatus {
    pub id: String,
    pub url: String,
    pub state: CameraState,
    pub frames_in: u64,
    pub frames_dropped: u64,
    pub units_in: u64,
    pub reconnects: u64,
    pub last_frame: Option<Instant>,
    pub ring_bytes: usize,
    /// The evidence (main) stream's state, when it has its own.
    pub evidence: Option<CameraState>,
}

struct Shared {
    settings: LiveSettings,
    url: CameraUrl,
    evidence_url: Option<CameraUrl>,
    evidence_state: Mutex<CameraState>,
    /// When the analysis connection's first unit or frame arrived: the main stream's
    /// units are placed on the analysis timeline by their arrival after it.
    anchor: Mutex<Option<Instant>>,
    evidence_units: AtomicU64,
    state: Mutex<CameraState>,
    frames: ArrayQueue<Frame>,
    ring: Mutex<(Option<gst::Caps>, RingBuffer)>,
    stop: AtomicBool,
    frames_in: AtomicU64,
    frames_dropped: AtomicU64,
    units_in: AtomicU64,
    reconnects: AtomicU64,
    /// Milliseconds since `epoch` of the last analysis frame (0: none yet).
    last_frame_ms: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn set_state(&self, state: CameraState) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if *s != state {
            match &state {
                CameraState::Failed(reason) => {
                    tracing::warn!(camera = %self.settings.id, %reason, "camera failed")
                }
                other => {
                    tracing::info!(camera = %self.settings.id, state = other.name(), "camera state")
                }
            }
            *s = state;
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn set_anchor(&self) {
        *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn set_evidence_state(&self, state: CameraState) {
        let mut s = self
            .evidence_state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *s != state {
            if let CameraState::Failed(reason) = &state {
                tracing::warn!(camera = %self.settings.id, %reason, "evidence stream failed");
            }
            *s = state;
        }
    }
}

pub struct LiveCamera {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    evidence_thread: Mutex<Option<JoinHandle<()>>>,
}

impl LiveCamera {
    /// Start the camera's supervisor. Only a malformed URL fails here; everything the
    /// network does is reported through [`LiveCamera::status`].
    pub fn start(mut settings: LiveSettings) -> Result<Self, LiveError> {
        init_gstreamer()?;
        let url = parse_camera_url(&settings.url)?;
        let evidence_url = settings
            .evidence_url
            .as_deref()
            .map(parse_camera_url)
            .transpose()?;
        settings.username = settings.username.take().or(url.username.clone());
        settings.password = settings.password.take().or(url.password.clone());
        let shared = Arc::new(Shared {
            frames: ArrayQueue::new(settings.queue_frames.max(1)),
            ring: Mutex::new((
                None,
                RingBuffer::new(settings.ring, settings.ring_max_bytes),
            )),
            url,
            evidence_state: Mutex::new(CameraState::Connecting),
            anchor: Mutex::new(None),
            evidence_units: AtomicU64::new(0),
            evidence_url,
            settings,
            state: Mutex::new(CameraState::Connecting),
            stop: AtomicBool::new(false),
            frames_in: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            units_in: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", shared.settings.id))
            .spawn(move || supervise(s, Stream::Analysis))
            .map_err(|e| LiveError::Gst(format!("cannot start camera thread: {e}")))?;
        let evidence_thread = if shared.evidence_url.is_some() {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name(format!("evidence-{}", shared.settings.id))
                    .spawn(move || supervise(s, Stream::Evidence))
                    .map_err(|e| LiveError::Gst(format!("cannot start camera thread: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
            evidence_thread: Mutex::new(evidence_thread),
        })
    }

    pub fn id(&self) -> &str {
        &self.shared.settings.id
    }

    pub fn status(&self) -> CameraStatus {
        let s = &self.shared;
        let last = s.last_frame_ms.load(Ordering::SeqCst);
        CameraStatus {
            id: s.settings.id.clone(),
            url: s.url.shown.clone(),
            state: s.state.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            frames_in: s.frames_in.load(Ordering::SeqCst),
            frames_dropped: s.frames_dropped.load(Ordering::SeqCst),
            units_in: s.units_in.load(Ordering::SeqCst),
            reconnects: s.reconnects.load(Ordering::SeqCst),
            last_frame: (last > 0).then(|| s.epoch + Duration::from_millis(last)),
            ring_bytes: s.ring.lock().map(|r| r.1.bytes()).unwrap_or(0),
            evidence: s.evidence_url.as_ref().map(|_| {
                s.evidence_state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            }),
        }
    }

    /// The oldest analysis frame waiting, if any.
    pub fn next_frame(&self) -> Option<Frame> {
        self.shared.frames.pop()
    }

    /// The compressed video from the keyframe before `from` up to `to` (stream time of the
    /// current connection), with its caps.
    pub fn clip(&self, from: Duration, to: Duration) -> Option<(gst::Caps, Vec<AccessUnit>)> {
        let ring = self.shared.ring.lock().ok()?;
        let caps = ring.0.clone()?;
        let units = ring.1.clip(
            gst::ClockTime::from_nseconds(from.as_nanos() as u64),
            gst::ClockTime::from_nseconds(to.as_nanos() as u64),
        );
        (!units.is_empty()).then_some((caps, units))
    }

    /// Stream time of the newest compressed unit held.
    pub fn ring_end(&self) -> Option<Duration> {
        let ring = self.shared.ring.lock().ok()?;
        ring.1
            .span()
            .map(|(_, end)| Duration::from_nanos(end.nseconds()))
    }

    /// Analysis frames waiting.
    pub fn queued(&self) -> usize {
        self.shared.frames.len()
    }

    /// Disconnect and stop retrying; waits for the supervisor to end.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for slot in [&self.thread, &self.evidence_thread] {
            let thread = slot.lock().ok().and_then(|mut t| t.take());
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
        self.shared.set_state(CameraState::Stopped);
    }
}

impl Drop for LiveCamera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Capped exponential backoff with jitter: between half and all of min·2^attempt.
pub fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let full = min
        .saturating_mul(1u32 << attempt.min(16))
        .min(max)
        .max(Duration::from_millis(1));
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let fraction = 0.5 + (u16::from_le_bytes(r) as f64 / u16::MAX as f64) * 0.5;
    full.mul_f64(fraction)
}

/// Which of a camera's streams a supervisor keeps up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Analysis,
    Evidence,
}

impl Shared {
    fn set_stream_state(&self, stream: Stream, state: CameraState) {
        match stream {
            Stream::Analysis => self.set_state(state),
            Stream::Evidence => self.set_evidence_state(state),
        }
    }
}

fn supervise(shared: Arc<Shared>, stream: Stream) {
    let mut attempt = 0u32;
    while !shared.stopping() {
        shared.set_stream_state(stream, CameraState::Connecting);
        let (state, streamed) = match stream {
            Stream::Analysis => run_connection(&shared),
            Stream::Evidence => run_evidence_connection(&shared),
        };
        if shared.stopping() {
            break;
        }
        if streamed {
            attempt = 0;
        }
        if stream == Stream::Analysis {
            shared.reconnects.fetch_add(1, Ordering::SeqCst);
        }
        shared.set_stream_state(stream, state);
        let wait = backoff(
            attempt,
            shared.settings.backoff_min,
            shared.settings.backoff_max,
        );
        attempt = attempt.saturating_add(1);
        let until = Instant::now() + wait;
        while Instant::now() < until && !shared.stopping() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    shared.set_stream_state(stream, CameraState::Stopped);
}

/// Put a compressed sample into the ring buffer at `pts` (remembering the stream's caps).
fn keep_unit(shared: &Shared, sample: &gst::Sample, pts: gst::ClockTime) {
    let Some(buffer) = sample.buffer() else {
        return;
    };
    let Ok(map) = buffer.map_readable() else {
        return;
    };
    let unit = AccessUnit {
        data: Arc::from(map.as_slice()),
        pts,
        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
    };
    if let Ok(mut ring) = shared.ring.lock() {
        if ring.0.is_none() {
            ring.0 = sample.caps().map(|c| c.to_owned());
        }
        ring.1.push(unit);
    }
}

/// Start a camera pipeline; its bus, or the failure to show.
fn play(pipeline: &gst::Pipeline, shown_url: &str) -> Result<gst::Bus, CameraState> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| CameraState::Failed("pipeline without a bus".into()))?;
    if pipeline.set_state(gst::State::Playing).is_err() {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(CameraState::Failed(format!("cannot start {shown_url}")));
    }
    Ok(bus)
}

/// Wait up to 100 ms for the pipeline to fail or end; the state that leaves it in.
fn bus_failure(bus: &gst::Bus, shown_url: &str) -> Option<CameraState> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(100),
        &[gst::MessageType::Error, gst::MessageType::Eos],
    )?;
    Some(match msg.view() {
        gst::MessageView::Error(e) => {
            let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
            CameraState::Failed(reason_of(&e.error().to_string(), &debug, shown_url))
        }
        _ => CameraState::Failed("the camera ended the stream".into()),
    })
}

/// Turn GStreamer's error into what an operator can act on.
fn reason_of(error: &str, debug: &str, shown_url: &str) -> String {
    let all = format!("{error} {debug}");
    if all.contains("Unauthorized") || all.contains("401") {
        "authentication failed: wrong user name or password".into()
    } else if all.contains("Not Found") || all.contains("404") {
        format!("no stream at {shown_url} (404 Not Found)")
    } else if all.contains("not-linked") || all.contains("not linked") {
        "the stream carries no H.264 video".into()
    } else if all.contains("Could not open resource")
        || all.contains("Could not connect")
        || all.contains("Connection refused")
    {
        format!("cannot connect to {shown_url}")
    } else if all.contains("timeout") || all.contains("timed out") {
        format!("{shown_url} did not answer in time")
    } else {
        format!("stream error: {error}")
    }
}

/// One connection, until it fails, stalls or the camera stops. Returns the state to show
/// and whether it got as far as streaming.
fn run_connection(shared: &Arc<Shared>) -> (CameraState, bool) {
    let s = &shared.settings;
    let protocols = match s.transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    };
    // The analysis branch decodes on one thread: a process runs many cameras, which keep
    // the cores busy between them, and a decoder thread per core per camera only adds
    // switching. Frames are thinned to the analysis rate before they are converted.
    let description = format!(
        "rtspsrc name=src latency=200 protocols={protocols} timeout=5000000 tcp-timeout=5000000 \
         ! rtph264depay ! h264parse config-interval=-1 \
         ! video/x-h264,stream-format=byte-stream,alignment=au ! tee name=t \
         t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 leaky=downstream \
            ! appsink name=units sync=false max-buffers=500 drop=true \
         t. ! queue max-size-buffers=30 leaky=downstream ! avdec_h264 max-threads=1 \
            ! videorate drop-only=true ! video/x-raw,framerate={0}/1 ! videoconvert ! videoscale \
            ! video/x-raw,format=RGB,pixel-aspect-ratio=1/1,framerate={0}/1{1} \
            ! appsink name=frames sync=false max-buffers=2 drop=true",
        s.analysis_fps.max(1),
        s.frame_size
            .map(|(w, h)| format!(",width={w},height={h}"))
            .unwrap_or_default()
    );
    let pipeline = match gst::parse::launch(&description)
        .ok()
        .and_then(|p| p.downcast::<gst::Pipeline>().ok())
    {
        Some(p) => p,
        None => {
            return (
                CameraState::Failed("cannot build the RTSP pipeline".into()),
                false,
            );
        }
    };
    let (Some(src), Some(units), Some(frames)) = (
        pipeline.by_name("src"),
        pipeline
            .by_name("units")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok()),
        pipeline
            .by_name("frames")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok()),
    ) else {
        return (
            CameraState::Failed("cannot build the RTSP pipeline".into()),
            false,
        );
    };
    src.set_property("location", &shared.url.shown);
    if let Some(u) = &s.username {
        src.set_property("user-id", u);
    }
    if let Some(p) = &s.password {
        src.set_property("user-pw", p);
    }
    if let Ok(mut ring) = shared.ring.lock() {
        ring.0 = None;
        ring.1.clear();
    }
    *shared.anchor.lock().unwrap_or_else(|p| p.into_inner()) = None;
    // Both branches time from the first access unit of this connection.
    let first_pts: Arc<Mutex<Option<gst::ClockTime>>> = Arc::default();
    {
        let shared = shared.clone();
        let first_pts = first_pts.clone();
        units.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let Some(pts) = buffer.pts() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let base = *first_pts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(|| {
                            shared.set_anchor();
                            pts
                        });
                    if shared.evidence_url.is_some() {
                        // Clips come from the main stream.
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    shared.units_in.fetch_add(1, Ordering::Relaxed);
                    keep_unit(&shared, &sample, pts.saturating_sub(base));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    {
        let shared = shared.clone();
        let first_pts = first_pts.clone();
        let index = AtomicU64::new(0);
        frames.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Ok((image, pts)) = rgb_from_sample(&sample) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let pts = pts.unwrap_or_default();
                    let base = *first_pts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(|| {
                            shared.set_anchor();
                            pts
                        });
                    let frame = Frame {
                        index: index.fetch_add(1, Ordering::Relaxed),
                        pts: Duration::from_nanos(pts.saturating_sub(base).nseconds()),
                        image: Arc::new(image),
                    };
                    shared.frames_in.fetch_add(1, Ordering::Relaxed);
                    shared.last_frame_ms.store(
                        shared.epoch.elapsed().as_millis().max(1) as u64,
                        Ordering::SeqCst,
                    );
                    if shared.frames.force_push(frame).is_some() {
                        shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let bus = match play(&pipeline, &shared.url.shown) {
        Ok(bus) => bus,
        Err(failed) => return (failed, false),
    };
    let started = Instant::now();
    let mut streamed = false;
    let frames_before = shared.frames_in.load(Ordering::SeqCst);
    let outcome = loop {
        if shared.stopping() {
            break CameraState::Stopped;
        }
        if let Some(failed) = bus_failure(&bus, &shared.url.shown) {
            break failed;
        }
        let got_frames = shared.frames_in.load(Ordering::SeqCst) > frames_before;
        if got_frames && !streamed {
            streamed = true;
            shared.set_state(CameraState::Streaming);
        }
        let last = shared.last_frame_ms.load(Ordering::SeqCst);
        let since_last = if got_frames {
            shared
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(last))
        } else {
            started.elapsed()
        };
        // Before the first frame, allow the connection time to come up.
        let limit = if got_frames {
            s.stall_after
        } else {
            s.stall_after + Duration::from_secs(10)
        };
        if since_last > limit {
            break if got_frames {
                CameraState::Stalled
            } else {
                CameraState::Failed(format!(
                    "no video from {} within {} s",
                    shared.url.shown,
                    limit.as_secs()
                ))
            };
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    (outcome, streamed)
}

/// The main stream: reconnects like the analysis stream, on its own, and only fills the
/// ring buffer.
fn run_evidence_connection(shared: &Arc<Shared>) -> (CameraState, bool) {
    let Some(url) = shared.evidence_url.clone() else {
        return (CameraState::Stopped, false);
    };
    let s = &shared.settings;
    let protocols = match s.transport {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
    };
    let description = format!(
        "rtspsrc name=src latency=200 protocols={protocols} timeout=5000000 tcp-timeout=5000000 \
         ! rtph264depay ! h264parse config-interval=-1 \
         ! video/x-h264,stream-format=byte-stream,alignment=au \
         ! appsink name=units sync=false max-buffers=500 drop=true"
    );
    let built = gst::parse::launch(&description)
        .ok()
        .and_then(|p| p.downcast::<gst::Pipeline>().ok());
    let Some((pipeline, src, units)) = built.and_then(|p| {
        let src = p.by_name("src")?;
        let units = p.by_name("units")?.downcast::<gst_app::AppSink>().ok()?;
        Some((p, src, units))
    }) else {
        return (
            CameraState::Failed("cannot build the RTSP pipeline".into()),
            false,
        );
    };
    src.set_property("location", &url.shown);
    if let Some(u) = url.username.as_ref().or(s.username.as_ref()) {
        src.set_property("user-id", u);
    }
    if let Some(p) = url.password.as_ref().or(s.password.as_ref()) {
        src.set_property("user-pw", p);
    }
    {
        let shared = shared.clone();
        units.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let anchor = *shared.anchor.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(anchor) = anchor else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    shared.evidence_units.fetch_add(1, Ordering::Relaxed);
                    // Placed on the analysis timeline by when it arrived.
                    let at = gst::ClockTime::from_nseconds(anchor.elapsed().as_nanos() as u64);
                    keep_unit(&shared, &sample, at);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let bus = match play(&pipeline, &url.shown) {
        Ok(bus) => bus,
        Err(failed) => return (failed, false),
    };
    let mut streamed = false;
    let mut last_count = shared.evidence_units.load(Ordering::SeqCst);
    let mut last_change = Instant::now();
    let outcome = loop {
        if shared.stopping() {
            break CameraState::Stopped;
        }
        if let Some(failed) = bus_failure(&bus, &url.shown) {
            break failed;
        }
        let count = shared.evidence_units.load(Ordering::SeqCst);
        if count != last_count {
            last_count = count;
            last_change = Instant::now();
            if !streamed {
                streamed = true;
                shared.set_evidence_state(CameraState::Streaming);
            }
        }
        let limit = if streamed {
            s.stall_after
        } else {
            s.stall_after + Duration::from_secs(10)
        };
        if last_change.elapsed() > limit {
            break if streamed {
                CameraState::Stalled
            } else {
                CameraState::Failed(format!(
                    "no video from {} within {} s",
                    url.shown,
                    limit.as_secs()
                ))
            };
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    (outcome, streamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_and_bad_urls_are_named_without_them() {
        let u = parse_camera_url("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/101").unwrap();
        assert_eq!(u.shown, "rtsp://10.0.0.5:554/Streaming/101");
        assert_eq!(u.username.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        let err = parse_camera_url("http://admin:secret@cam/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rtsp or rtsps") && !err.contains("secret"),
            "{err}"
        );
        let err = parse_camera_url("not a url").unwrap_err().to_string();
        assert!(err.contains("camera URL `not a url`"), "{err}");
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(4));
        for attempt in 0..10 {
            let b = backoff(attempt, min, max);
            let full = min.saturating_mul(1 << attempt).min(max);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b:?}");
        }
    }
}
