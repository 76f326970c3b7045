//! The live runner's Prometheus metrics: per camera, the shared inference, the recorder.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::output::recorder::RecorderMetrics;
use crate::source::rtsp::CameraStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CameraLabel {
    camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    camera: String,
    pub(super) state: String,
}

/// Prometheus metrics of the live cameras and the shared inference.
pub struct Metrics {
    registry: Registry,
    pub(super) frames: Family<CameraLabel, Counter>,
    pub(super) dropped: Family<CameraLabel, Counter>,
    pub(super) reconnects: Family<CameraLabel, Counter>,
    pub(super) analysed: Family<CameraLabel, Counter>,
    pub(super) skipped: Family<CameraLabel, Counter>,
    pub(super) regions: Family<CameraLabel, Counter>,
    pub(super) coasted: Family<CameraLabel, Counter>,
    pub(super) violations: Family<CameraLabel, Counter>,
    state: Family<StateLabel, Gauge>,
    pub(super) last_frame_age: Family<CameraLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub(super) queue: Family<CameraLabel, Gauge>,
    pub(super) inference: Histogram,
    /// Looks run together by the detector the cameras share (cross-camera batching).
    pub(super) batch_size: Histogram,
    pub(super) recorder: RecorderMetrics,
    /// Camera counters already reported: (frames, dropped, reconnects) per camera.
    seen: Mutex<std::collections::HashMap<String, (u64, u64, u64)>>,
}

impl Metrics {
    pub(super) fn new() -> Self {
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
            batch_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
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
            "detector_batch_size",
            "Looks (frames or regions of frames, of any camera) in one run of the shared vehicle detector; only with [run] batch_size above 1",
            m.batch_size.clone(),
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
        registry.register(
            "records_set_aside",
            "Cases and plate reads the store refused for good, set aside in the spool folder for a person",
            m.recorder.set_aside.clone(),
        );
        Self { registry, ..m }
    }

    pub(super) fn label(id: &str) -> CameraLabel {
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
                s.last_frame_age
                    .map(|a| a.as_secs_f64())
                    .unwrap_or(f64::NAN),
            );
            self.queue.get_or_create(&l).set(*queued as i64);
        }
    }

    /// Prometheus text exposition, after bringing the camera counters up to date.
    pub(super) fn text(&self, statuses: &[(CameraStatus, usize)]) -> String {
        self.refresh(statuses);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
