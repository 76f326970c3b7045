//! Where a camera's analysis has its vehicle detector run: the seam between deciding what
//! of a frame to look at ([`super::schedule`]) and taking in what was found. By default
//! the analysis runs the detector it was lent; a live runner with cross-camera batching
//! hands every camera's looks to one shared detector behind a [`Batcher`], so that a GPU
//! runs the frames of many cameras in one model run.

use std::path::Path;

use vigil_models::batch::{BatchError, BatchObserver, BatchSettings, Batcher};
use vigil_models::{DetectRequest, Detection, Detector, Manifest, ModelError, engine};

use super::Models;

/// Runs the vehicle detector for an analysis: one answer per request, in order.
pub trait VehicleStage {
    /// `own` is the detector of the models the analysis was lent, for a stage that runs
    /// them itself.
    fn detect(
        &mut self,
        own: &mut Detector,
        requests: Vec<DetectRequest>,
    ) -> Result<Vec<Vec<Detection>>, ModelError>;
}

/// The lent models' own detector, one camera's looks at a time, each in a run of its
/// own (a frame's regions too: on a CPU a batch costs what its looks cost, or more).
pub struct OwnDetector;

impl VehicleStage for OwnDetector {
    fn detect(
        &mut self,
        own: &mut Detector,
        requests: Vec<DetectRequest>,
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        own.run_requests(&requests, false)
    }
}

/// A detector many cameras share: all of a frame's looks are handed over at once (so the
/// regions of one frame can share a run too), then their answers waited for.
pub type SharedDetector = Batcher<DetectRequest, Vec<Detection>>;

/// One more vehicle detector (the manifest's, on the process's engine), started behind a
/// batcher for many cameras' or workers' looks; the workers' own detectors still serve
/// the schedule's geometry (the same model's).
pub fn shared_vehicle_detector(
    manifest_path: &Path,
    settings: BatchSettings,
    observer: Option<BatchObserver>,
) -> Result<SharedDetector, ModelError> {
    let manifest = Manifest::load(manifest_path)?;
    let detector = Detector::load_on(&manifest, Models::VEHICLE, engine::backend()?)?;
    if !detector.batched() {
        tracing::warn!(
            "looks batched {} at most, but the vehicle detector ({}) runs one image a run here (no batch axis, or a CPU engine): a batch's looks run one after another",
            settings.max_batch,
            detector.path().display()
        );
    }
    let path = detector.path().to_owned();
    SharedDetector::start("vehicle", Box::new(detector), settings, observer).map_err(|e| {
        ModelError::Load {
            path,
            role: Models::VEHICLE.into(),
            message: format!("cannot start the thread that batches its looks: {e}"),
        }
    })
}

impl VehicleStage for &SharedDetector {
    fn detect(
        &mut self,
        _own: &mut Detector,
        requests: Vec<DetectRequest>,
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        let asked: Vec<_> = requests.into_iter().map(|r| self.submit(r)).collect();
        asked
            .into_iter()
            .map(|answer| {
                answer
                    .recv()
                    .unwrap_or(Err(BatchError::Stopped))
                    .map_err(|e| ModelError::Inference {
                        role: "vehicle_detector (shared by the cameras)".into(),
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}
