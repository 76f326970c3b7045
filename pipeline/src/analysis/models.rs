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
    manifest: Manifest,
    /// Loaded on first use: only a camera with the no-helmet rule needs it, and it is
    /// an optional setup step.
    helmet: Option<Detector>,
}

impl ModelInfo {
    fn of(manifest: &Manifest, role: &str) -> Result<Self, ModelError> {
        let (path, spec) = manifest.verified(role)?;
        Ok(Self {
            role: role.into(),
            file: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: manifest.sha256(role, spec)?,
            package: spec.source.package.clone(),
            version: spec.source.version.clone(),
        })
    }
}

impl Models {
    pub const VEHICLE: &'static str = "vehicle_detector";
    pub const TEXT_DETECTOR: &'static str = "text_detector";
    pub const TEXT_RECOGNIZER: &'static str = "text_recognizer";
    pub const HELMET: &'static str = "helmet_detector";

    pub fn load(manifest_path: &Path) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        // Check every file before loading any, so one run reports the first bad file by name.
        let mut info = Vec::new();
        for role in [Self::VEHICLE, Self::TEXT_DETECTOR, Self::TEXT_RECOGNIZER] {
            info.push(ModelInfo::of(&manifest, role)?);
        }
        Ok(Self {
            vehicle: Detector::load(&manifest, Self::VEHICLE)?,
            plates: PlateReader {
                detector: TextDetector::load(&manifest, Self::TEXT_DETECTOR)?,
                recognizer: TextRecognizer::load(&manifest, Self::TEXT_RECOGNIZER)?,
            },
            info,
            manifest,
            helmet: None,
        })
    }

    /// Load now what `camera`'s rules need beyond the default models (the no-helmet
    /// rule's head model), so that it is named in every evidence package from the first,
    /// and a missing one is reported before any video is read.
    pub fn prepare_for(&mut self, camera: &crate::config::CameraConfig) -> Result<(), ModelError> {
        if camera.rules().iter().any(|(_, r)| r.needs_heads()) {
            self.helmet()?;
        }
        Ok(())
    }

    /// The head model of the no-helmet rule, loaded (and its file checked) on first use;
    /// a missing one is named with the setup step that exports it.
    pub fn helmet(&mut self) -> Result<&mut Detector, ModelError> {
        let detector = match self.helmet.take() {
            Some(d) => d,
            None => {
                let info = ModelInfo::of(&self.manifest, Self::HELMET)?;
                let d = Detector::load(&self.manifest, Self::HELMET)?;
                self.info.push(info);
                d
            }
        };
        Ok(self.helmet.insert(detector))
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
