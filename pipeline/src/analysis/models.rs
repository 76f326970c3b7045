//! The models an analysis runs, loaded (and each file checked) from the model manifest.

use std::path::Path;

use serde::Serialize;
use vigil_models::{Backend, Detector, Manifest, ModelError, TextDetector, TextRecognizer, engine};

use crate::config::CameraConfig;
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
    /// Loaded only for cameras with the no-helmet rule: it is an optional setup step.
    helmet: Option<Detector>,
    backend: Backend,
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

    /// The models every camera needs (the vehicle detector and the plate reader), run
    /// by the process's backend (`VIGIL_ENGINE`).
    pub fn load(manifest_path: &Path) -> Result<Self, ModelError> {
        Self::load_for(manifest_path, [])
    }

    /// Every model any camera may need that is installed (the no-helmet model only where
    /// `scripts/setup --helmet` put it): for a fleet's worker, whose cameras come later.
    pub fn load_every(manifest_path: &Path) -> Result<Self, ModelError> {
        let heads = Manifest::load(manifest_path)?.installed(Self::HELMET);
        Self::load_roles(manifest_path, heads, engine::backend()?)
    }

    /// Every model that `cameras`' rules need, run by the process's backend: see
    /// [`Models::load_on`].
    pub fn load_for<'a>(
        manifest_path: &Path,
        cameras: impl IntoIterator<Item = &'a CameraConfig>,
    ) -> Result<Self, ModelError> {
        Self::load_on(manifest_path, cameras, engine::backend()?)
    }

    /// Every model that `cameras`' rules need, run by `backend`. This is the one checked
    /// load: each file is checked against the manifest before any is loaded (so one run
    /// reports the first bad file by name, with its setup step), and each model is tried
    /// on the shapes it will be fed, so that a model the backend cannot run fails here,
    /// before any video is read, and never at a camera's first frame.
    pub fn load_on<'a>(
        manifest_path: &Path,
        cameras: impl IntoIterator<Item = &'a CameraConfig>,
        backend: Backend,
    ) -> Result<Self, ModelError> {
        let heads = cameras
            .into_iter()
            .any(|c| c.rules().iter().any(|(_, r)| r.needs_heads()));
        Self::load_roles(manifest_path, heads, backend)
    }

    /// The vehicle detector and plate reader, and the no-helmet model if `heads`.
    fn load_roles(manifest_path: &Path, heads: bool, backend: Backend) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        let mut roles = vec![Self::VEHICLE, Self::TEXT_DETECTOR, Self::TEXT_RECOGNIZER];
        if heads {
            roles.push(Self::HELMET);
        }
        let info = roles
            .iter()
            .map(|role| ModelInfo::of(&manifest, role))
            .collect::<Result<Vec<_>, _>>()?;
        let helmet = if heads {
            Some(Detector::load_on(&manifest, Self::HELMET, backend)?)
        } else {
            None
        };
        Ok(Self {
            vehicle: Detector::load_on(&manifest, Self::VEHICLE, backend)?,
            plates: PlateReader {
                detector: TextDetector::load_on(&manifest, Self::TEXT_DETECTOR, backend)?,
                recognizer: TextRecognizer::load_on(&manifest, Self::TEXT_RECOGNIZER, backend)?,
            },
            info,
            helmet,
            backend,
        })
    }

    /// What runs these models.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The head model of the no-helmet rule, if the load named a camera that needs it.
    pub fn helmet(&mut self) -> Result<&mut Detector, ModelError> {
        self.helmet.as_mut().ok_or_else(|| ModelError::NotLoaded {
            role: Self::HELMET.into(),
            why: "the models were loaded for cameras without the no-helmet rule; \
                  load them with every camera they will analyse (Models::load_for)"
                .into(),
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
