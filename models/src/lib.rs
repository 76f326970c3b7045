//! Model manifest and ONNX model wrappers.
//!
//! Every model the system runs is named in `models/models.toml` with its file, SHA-256,
//! source package and shapes; [`Manifest::load`] checks the files before any session is
//! built, so a missing or wrong file is reported by name with the command that fixes it.

pub mod batch;
pub mod detector;
pub mod engine;
pub mod error;
pub mod geometry;
pub mod manifest;
pub mod runtime;
pub mod text;

pub use detector::{DetectRequest, Detection, Detector, Region};
pub use engine::Backend;
pub use error::ModelError;
pub use geometry::BBox;
pub use manifest::{Manifest, ModelSpec};
pub use text::{CharRead, Recognized, Step, TextDetector, TextRecognizer, TextRegion};
