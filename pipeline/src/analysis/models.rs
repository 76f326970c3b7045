//! The models an analysis runs, loaded (and each file checked) from the model manifest.

use std::path::Path;

use serde::Serialize;
use vigil_models::{Detector, Manifest, ModelError, TextDetector, TextRecognizer};

use crate::plates::PlateReader;

/// A model as the evidence records it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub role: String,
    pub file: String,
    pub sha256: String,
    pub package: String,
    pub version: String,
}

/// The models the analysis runs: lent to one camera's analysis per call, so one set can
/// serve many cameras.
pub struct Models {
    pub vehicle: Detector,
    pub plates: PlateReader,
    pub info: Vec<ModelInfo>,
}

impl Models {
    pub const VEHICLE: &'static str = "vehicle_detector";
    pub const TEXT_DETECTOR: &'static str = "text_detector";
    pub const TEXT_RECOGNIZER: &'static str = "text_recognizer";

    pub fn load(manifest_path: &Path) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        // Check every file before loading any, so one run reports the first bad file by name.
        let mut info = Vec::new();
        for role in [Self::VEHICLE, Self::TEXT_DETECTOR, Self::TEXT_RECOGNIZER] {
            let (path, spec) = manifest.verified(role)?;
            info.push(ModelInfo {
                role: role.into(),
                file: path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: spec.sha256.clone(),
                package: spec.source.package.clone(),
                version: spec.source.version.clone(),
            });
        }
        Ok(Self {
            vehicle: Detector::load(&manifest, Self::VEHICLE)?,
            plates: PlateReader {
                detector: TextDetector::load(&manifest, Self::TEXT_DETECTOR)?,
                recognizer: TextRecognizer::load(&manifest, Self::TEXT_RECOGNIZER)?,
            },
            info,
        })
    }

    /// The vehicle detector's name for a class.
    pub fn class_name(&self, class_id: usize) -> String {
        self.vehicle
            .classes
            .get(class_id)
            .cloned()
            .unwrap_or_else(|| class_id.to_string())
    }
}
