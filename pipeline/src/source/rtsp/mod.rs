//! One live camera: `rtspsrc` → depay/parse → `tee` into (a) decode → rate/scale → RGB
//! frames for analysis and (b) the compressed ring buffer for clips. A supervisor thread
//! keeps it connected: a failure or a stall tears the pipeline down and reconnects with
//! capped exponential backoff and jitter, for as long as the camera is configured. Frames
//! wait in a bounded queue; when analysis falls behind, the oldest are dropped and counted,
//! so decoding never blocks and memory never grows.
//!
//! A camera hands out two views of itself: its frames ([`CameraFrames`], a
//! [`FrameSource`]) and its compressed video ([`RingClips`], a [`ClipSource`]).

mod connection;
mod url;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use gstreamer as gst;
use vigil_core::Clock;

use super::clip::{Clip, ClipError, ClipSource, write_clip};
use super::ring::{AccessUnit, RingBuffer};
use super::{FrameSource, SourceError, init_gstreamer};
use crate::footage::SegmentWriter;
use crate::frame::Frame;
use crate::retry::backoff;

pub use url::{CameraUrl, parse_camera_url};

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
    /// What decodes the analysed stream.
    pub decoder: Decoder,
    /// Which of the camera's streams to record continuously, if any (the runner turns
    /// it into `footage`).
    pub record: Option<RecordedStream>,
    /// Days this camera's footage is kept, when not the deployment's.
    pub footage_days: Option<f64>,
    /// Record a stream continuously into segments in this folder.
    pub footage: Option<FootageSettings>,
}

/// What decodes the analysed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decoder {
    /// FFmpeg's H.264 decoder on the CPU (`avdec_h264`), one thread a camera.
    #[default]
    Software,
    /// NVIDIA's hardware decoder (NVDEC) through GStreamer's nvcodec plugin: `nvh264dec`.
    Nvdec,
    /// NVDEC's stateless decoder, `nvh264sldec`.
    NvdecStateless,
}

impl Decoder {
    /// The GStreamer element, and how it is set.
    pub fn element(self) -> &'static str {
        match self {
            Decoder::Software => "avdec_h264",
            Decoder::Nvdec => "nvh264dec",
            Decoder::NvdecStateless => "nvh264sldec",
        }
    }

    /// The decoding part of the analysed branch, up to frames in system memory at
    /// `fps`. NVDEC's frames stay in GPU memory until they are thinned to the analysis
    /// rate (`videorate` passes any memory), so only those are copied to the CPU, and a
    /// camera's `frame_size` is scaled there, on the GPU, before the copy.
    pub(super) fn description(self, fps: u32, size: Option<(u32, u32)>) -> String {
        match self {
            Decoder::Software => "avdec_h264 max-threads=1".into(),
            nvdec => {
                const CUDA: &str = "video/x-raw(memory:CUDAMemory)";
                let scale = size
                    .map(|(w, h)| format!(" ! cudascale ! {CUDA},width={w},height={h}"))
                    .unwrap_or_default();
                format!(
                    "{} ! {CUDA} ! videorate drop-only=true ! {CUDA},framerate={fps}/1{scale} \
                     ! cudadownload",
                    nvdec.element()
                )
            }
        }
    }

    /// Every element [`Decoder::description`] names beyond the decoder.
    fn helpers(self) -> &'static [&'static str] {
        match self {
            Decoder::Software => &[],
            _ => &["cudascale", "cudadownload"],
        }
    }

    /// Whether this GStreamer can make the element: an NVDEC decoder is registered by the
    /// nvcodec plugin only where it finds an NVIDIA driver (libcuda.so.1, libnvcuvid.so.1).
    pub fn check(self) -> Result<(), SourceError> {
        init_gstreamer()?;
        let missing = std::iter::once(self.element())
            .chain(self.helpers().iter().copied())
            .find(|e| gst::ElementFactory::find(e).is_none());
        let Some(missing) = missing else {
            return Ok(());
        };
        Err(SourceError::NoDecoder {
            element: missing,
            why: match self {
                Decoder::Software => {
                    "GStreamer's libav plugin (gstreamer1.0-libav) is missing: run scripts/setup"
                }
                _ => {
                    "GStreamer's nvcodec plugin (gstreamer1.0-plugins-bad) registers it only \
                     where it finds an NVIDIA GPU and driver (libcuda.so.1, libnvcuvid.so.1); \
                     use decoder = \"avdec_h264\" on this machine"
                }
            },
        })
    }
}

/// The stream a camera records. With one stream (no `evidence_url`) both are that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedStream {
    /// The main stream, where evidence clips come from: full resolution.
    Main,
    /// The sub-stream analysed: a fraction of the main's bytes (a week of the province's
    /// cameras is 49 TB of 0.5 Mbit/s sub-streams or 197 TB of 2 Mbit/s main streams).
    Sub,
}

/// Where and how a camera's stream is recorded.
#[derive(Debug, Clone)]
pub struct FootageSettings {
    pub dir: PathBuf,
    pub segment: Duration,
    pub stream: RecordedStream,
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
            decoder: Decoder::Software,
            record: None,
            footage_days: None,
            footage: None,
        }
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
    /// How long ago the last analysis frame arrived.
    pub last_frame_age: Option<Duration>,
    pub ring_bytes: usize,
    /// The evidence (main) stream's state, when it has its own.
    pub evidence: Option<CameraState>,
}

struct Shared {
    settings: LiveSettings,
    url: CameraUrl,
    evidence_url: Option<CameraUrl>,
    evidence_state: Mutex<CameraState>,
    /// When (monotonic time) the analysis connection's first unit or frame arrived: the
    /// main stream's units are placed on the analysis timeline by their arrival after it.
    anchor: Mutex<Option<Duration>>,
    evidence_units: AtomicU64,
    state: Mutex<CameraState>,
    frames: ArrayQueue<Frame>,
    ring: Mutex<(Option<gst::Caps>, RingBuffer)>,
    /// The continuous recording, when the camera has one.
    footage: Mutex<Option<SegmentWriter>>,
    stop: AtomicBool,
    frames_in: AtomicU64,
    frames_dropped: AtomicU64,
    units_in: AtomicU64,
    reconnects: AtomicU64,
    /// Monotonic milliseconds of the last analysis frame (0: none yet).
    last_frame_ms: AtomicU64,
    clock: Arc<dyn Clock>,
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
        *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.clock.monotonic());
    }

    /// Monotonic milliseconds now, never 0 (0 means "no frame yet").
    fn now_ms(&self) -> u64 {
        (self.clock.monotonic().as_millis() as u64).max(1)
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
    pub fn start(mut settings: LiveSettings, clock: Arc<dyn Clock>) -> Result<Self, SourceError> {
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
            footage: Mutex::new(
                settings
                    .footage
                    .as_ref()
                    .map(|f| SegmentWriter::new(f.dir.clone(), f.segment)),
            ),
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
            clock,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", shared.settings.id))
            .spawn(move || supervise(s, Stream::Analysis))
            .map_err(|e| cannot_start(&shared.settings.id, e))?;
        let evidence_thread = if shared.evidence_url.is_some() {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name(format!("evidence-{}", shared.settings.id))
                    .spawn(move || supervise(s, Stream::Evidence))
                    .map_err(|e| cannot_start(&shared.settings.id, e))?,
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
            last_frame_age: (last > 0)
                .then(|| Duration::from_millis(s.now_ms().saturating_sub(last))),
            ring_bytes: s.ring.lock().map(|r| r.1.bytes()).unwrap_or(0),
            evidence: s.evidence_url.as_ref().map(|_| {
                s.evidence_state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            }),
        }
    }

    /// The camera's analysis frames, oldest first.
    pub fn frames(&self) -> CameraFrames {
        CameraFrames(self.shared.clone())
    }

    /// The camera's compressed video, for evidence clips.
    pub fn clips(&self) -> RingClips {
        RingClips(self.shared.clone())
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
        let (state, streamed) = connection::run(&shared, stream);
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
        let until = shared.clock.monotonic() + wait;
        while shared.clock.monotonic() < until && !shared.stopping() {
            shared.clock.sleep(Duration::from_millis(50));
        }
    }
    shared.set_stream_state(stream, CameraState::Stopped);
    if let Ok(mut footage) = shared.footage.lock()
        && let Some(writer) = footage.as_mut()
        && let Err(e) = writer.close()
    {
        tracing::warn!(camera = %shared.settings.id, error = %e, "the last footage segment was not finished");
    }
}

fn cannot_start(camera: &str, e: std::io::Error) -> SourceError {
    SourceError::Camera {
        camera: camera.to_string(),
        message: format!("cannot start its thread: {e}"),
    }
}

/// A camera's analysis frames: a [`FrameSource`] that never ends while the camera runs,
/// and has no frame whenever analysis has caught up with it.
pub struct CameraFrames(Arc<Shared>);

impl FrameSource for CameraFrames {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        Ok(self.0.frames.pop())
    }

    fn ended(&self) -> bool {
        self.0.stopping() && self.0.frames.is_empty()
    }
}

/// A camera's ring buffer as a [`ClipSource`]: the last seconds of its compressed stream,
/// on the current connection's timeline.
pub struct RingClips(Arc<Shared>);

impl RingClips {
    /// The compressed video from the keyframe before `from` up to `to`, with its caps.
    fn units(&self, from: Duration, to: Duration) -> Option<(gst::Caps, Vec<AccessUnit>)> {
        let ring = self.0.ring.lock().ok()?;
        let caps = ring.0.clone()?;
        let units = ring.1.clip(
            gst::ClockTime::from_nseconds(from.as_nanos() as u64),
            gst::ClockTime::from_nseconds(to.as_nanos() as u64),
        );
        (!units.is_empty()).then_some((caps, units))
    }
}

impl ClipSource for RingClips {
    fn cut(&self, from: Duration, to: Duration, out: &Path) -> Result<Clip, ClipError> {
        let (caps, units) = self.units(from, to).ok_or_else(|| ClipError {
            path: out.display().to_string(),
            message: "the ring buffer no longer holds this violation's video".into(),
        })?;
        write_clip(&units, &caps, out)
    }

    fn held_until(&self) -> Option<Duration> {
        let ring = self.0.ring.lock().ok()?;
        ring.1
            .span()
            .map(|(_, end)| Duration::from_nanos(end.nseconds()))
    }
}

#[cfg(test)]
mod tests {
    use super::Decoder;

    /// NVDEC's frames are thinned to the analysis rate and scaled while still in GPU
    /// memory, and only then copied out; the CPU's decoder is one thread a camera.
    #[test]
    fn nvdec_frames_leave_the_gpu_only_at_the_analysis_rate_and_size() {
        assert_eq!(
            Decoder::Software.description(5, Some((640, 360))),
            "avdec_h264 max-threads=1"
        );
        let d = Decoder::Nvdec.description(5, Some((640, 360)));
        let steps: Vec<&str> = d.split(" ! ").map(str::trim).collect();
        assert_eq!(
            steps,
            [
                "nvh264dec",
                "video/x-raw(memory:CUDAMemory)",
                "videorate drop-only=true",
                "video/x-raw(memory:CUDAMemory),framerate=5/1",
                "cudascale",
                "video/x-raw(memory:CUDAMemory),width=640,height=360",
                "cudadownload",
            ],
            "{d}"
        );
        let d = Decoder::NvdecStateless.description(2, None);
        assert!(d.starts_with("nvh264sldec ! "), "{d}");
        assert!(
            !d.contains("cudascale") && d.ends_with("framerate=2/1 ! cudadownload"),
            "{d}"
        );
    }
}
