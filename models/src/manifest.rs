use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ModelError;

/// The model manifest, `models/models.toml`: one entry per role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Folder the model files are relative to (the manifest's own folder).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The manifest file itself, for messages.
    #[serde(skip)]
    pub path: PathBuf,
    pub models: BTreeMap<String, ModelSpec>,
}

/// How a detector lays out its output tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorFormat {
    /// YOLOv8 / YOLO11: `[1, 4 + classes (+ mask coefficients), anchors]`, no objectness.
    Yolo,
    /// YOLOv5: `[1, anchors, 5 + classes (+ mask coefficients)]`, with objectness.
    Yolov5,
    /// RT-DETR: `[1, queries, 4 + classes]`, boxes normalised to the input size.
    Rtdetr,
    /// A YOLOv8 / YOLO11 graph cut before its anchor step (scripts/derive_detector.py):
    /// `[N, 4 + classes, anchors]`, rows 0-3 the left, top, right and bottom distances
    /// from each anchor in stride units, for any input that is a multiple of 32.
    YoloDistances,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub registry: String,
    pub package: String,
    pub version: String,
    pub path: String,
    /// SHA-256 of the file in the package, where the model is derived from it.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// One model: where it is, what it is, and where it came from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub file: PathBuf,
    /// SHA-256 of `file`; empty for a model exported at setup (`exported_by`), whose
    /// export is not byte-for-byte repeatable: the export writes the hash it made beside
    /// the file (`<file>.sha256`), and that is what the file is checked against.
    #[serde(default)]
    pub sha256: String,
    pub licence: String,
    pub source: Source,
    /// Input shape; `-1` marks a dynamic dimension.
    pub input: Vec<i64>,
    #[serde(default)]
    pub outputs: Vec<Vec<i64>>,
    /// The script (under `scripts/`) that turns the packaged file into `file`.
    #[serde(default)]
    pub derived_by: Option<String>,
    /// The script (under `scripts/`) that exports the packaged weights to `file`, for a
    /// model the default setup leaves out; `setup_hint` says how to ask for it.
    #[serde(default)]
    pub exported_by: Option<String>,
    /// How to install an optional model (`scripts/setup --helmet`).
    #[serde(default)]
    pub setup_hint: Option<String>,
    /// Detectors with a dynamic input: the longest side an image is fitted to, as the
    /// model was trained.
    #[serde(default)]
    pub size: Option<u32>,
    /// `f32` or `f16`.
    #[serde(default = "default_input_type")]
    pub input_type: String,
    /// Detectors only.
    #[serde(default)]
    pub format: Option<DetectorFormat>,
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub confidence: Option<f32>,
    #[serde(default)]
    pub iou: Option<f32>,
    /// Detectors: suppress overlapping boxes whatever their class, for a model whose
    /// classes never overlap in the world (one vehicle is one vehicle, however the model
    /// hesitates between bus and lorry). Off: per class, so a rider and a motorbike
    /// both stay.
    #[serde(default)]
    pub agnostic_nms: bool,
}

fn default_input_type() -> String {
    "f32".into()
}

/// The largest side a detector's input may have: a 4K frame.
const MAX_SIZE: u32 = 4_096;

impl ModelSpec {
    /// The command that installs the model.
    pub fn setup(&self) -> String {
        self.setup_hint
            .clone()
            .unwrap_or_else(|| "scripts/setup".into())
    }

    /// Every number within what a model can be: a tensor the machine can hold, a share
    /// that is a share.
    fn check(&self) -> Result<(), String> {
        match (&self.exported_by, self.sha256.is_empty()) {
            (None, true) => return Err("`sha256` is missing".into()),
            (Some(_), false) => {
                return Err(
                    "`sha256` and `exported_by` together: an exported model's hash is \
                     written beside it by the export"
                        .into(),
                );
            }
            _ => {}
        }
        if self.input.is_empty()
            || self.input.len() > 8
            || self
                .input
                .iter()
                .any(|&d| d != -1 && !(1..=i64::from(MAX_SIZE)).contains(&d))
        {
            return Err(format!(
                "`input` {:?}: each dimension is -1 (dynamic) or 1..={MAX_SIZE}, at most 8",
                self.input
            ));
        }
        if let Some(size) = self.size
            && !((32..=MAX_SIZE).contains(&size) && size % 32 == 0)
        {
            return Err(format!(
                "`size` {size} is not a multiple of 32 within 32..={MAX_SIZE}"
            ));
        }
        if !matches!(self.input_type.as_str(), "f32" | "f16") {
            return Err(format!(
                "`input_type` {:?} is not f32 or f16",
                self.input_type
            ));
        }
        for (name, value) in [("confidence", self.confidence), ("iou", self.iou)] {
            if let Some(v) = value
                && !(v > 0.0 && v <= 1.0)
            {
                return Err(format!("`{name}` {v} is not a share in (0, 1]"));
            }
        }
        if self
            .classes
            .iter()
            .any(|c| c.trim().is_empty() || c.len() > 64)
        {
            return Err("`classes`: each is a name of 1 to 64 characters".into());
        }
        Ok(())
    }
}

impl Manifest {
    /// Read the manifest; does not touch the model files (see [`Manifest::verified`]).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Manifest {
            path: path.to_owned(),
            message: format!("cannot read it ({e}); run scripts/setup"),
        })?;
        let mut manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        manifest.dir = path.parent().map(Path::to_owned).unwrap_or_default();
        manifest.path = path.to_owned();
        for (role, spec) in &manifest.models {
            spec.check().map_err(|message| ModelError::Manifest {
                path: path.to_owned(),
                message: format!("[models.{role}] {message}"),
            })?;
        }
        Ok(manifest)
    }

    /// The spec for `role`, with its file checked to exist and to hash as the manifest says.
    pub fn verified(&self, role: &str) -> Result<(PathBuf, &ModelSpec), ModelError> {
        let spec = self.models.get(role).ok_or_else(|| ModelError::Manifest {
            path: self.path.clone(),
            message: format!("no model for role `{role}`"),
        })?;
        let path = self.dir.join(&spec.file);
        let expected = self.sha256(role, spec)?;
        let actual =
            sha256_file(&path).map_err(|e| unreadable(e, role, spec, path.clone(), &path))?;
        if !actual.eq_ignore_ascii_case(&expected) {
            return Err(ModelError::Checksum {
                path,
                role: role.into(),
                expected,
                actual,
            });
        }
        Ok((path, spec))
    }

    /// The SHA-256 `role`'s file must have: the manifest's, or for an exported model the
    /// one its export wrote beside it.
    pub fn sha256(&self, role: &str, spec: &ModelSpec) -> Result<String, ModelError> {
        if spec.exported_by.is_none() {
            return Ok(spec.sha256.clone());
        }
        let mut name = spec.file.clone().into_os_string();
        name.push(".sha256");
        let sidecar = self.dir.join(PathBuf::from(name));
        let text = std::fs::read_to_string(&sidecar)
            .map_err(|e| unreadable(e, role, spec, self.dir.join(&spec.file), &sidecar))?;
        let sha = text.split_whitespace().next().unwrap_or_default();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ModelError::Manifest {
                path: sidecar,
                message: "not a SHA-256 written by the export; delete it and export again".into(),
            });
        }
        Ok(sha.to_ascii_lowercase())
    }
}

/// A model's file (or the hash its export wrote) that cannot be read: missing is named
/// as the model missing, with the command that installs it; anything else as the I/O
/// error on the file that was read.
fn unreadable(
    e: std::io::Error,
    role: &str,
    spec: &ModelSpec,
    model: PathBuf,
    read: &Path,
) -> ModelError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::Missing {
            path: model,
            role: role.into(),
            setup: spec.setup(),
        },
        _ => ModelError::Io {
            path: read.to_owned(),
            source: e,
        },
    }
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
[models.vehicle_detector]
file = "onnx/x.onnx"
sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
licence = "test"
source = { registry = "pypi", package = "p", version = "1", path = "p/x.onnx" }
input = [1, 3, 640, 640]
format = "yolo"
classes = ["car"]
"#;

    #[test]
    fn missing_and_corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let manifest_path = dir.path().join("models.toml");
        std::fs::write(&manifest_path, SPEC).unwrap();
        let manifest = Manifest::load(&manifest_path).unwrap();

        let err = manifest.verified("vehicle_detector").unwrap_err();
        assert!(matches!(err, ModelError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("onnx/x.onnx"), "{err}");

        std::fs::create_dir(dir.path().join("onnx")).unwrap();
        std::fs::write(dir.path().join("onnx/x.onnx"), b"hellx").unwrap();
        let err = manifest.verified("vehicle_detector").unwrap_err();
        assert!(matches!(err, ModelError::Checksum { .. }), "{err}");

        std::fs::write(dir.path().join("onnx/x.onnx"), b"hello").unwrap();
        let (path, spec) = manifest.verified("vehicle_detector").unwrap();
        assert!(path.ends_with("onnx/x.onnx"));
        assert_eq!(spec.format, Some(DetectorFormat::Yolo));
    }

    #[test]
    fn numbers_no_model_can_have_are_refused_by_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom-models.toml");
        for (change, key) in [
            ("format = \"yolo\"\nsize = 0", "`size` 0"),
            ("format = \"yolo\"\nsize = 100000", "`size` 100000"),
            ("format = \"yolo\"\nsize = 100", "`size` 100"),
            ("format = \"yolo\"\nconfidence = nan", "`confidence` NaN"),
            ("format = \"yolo\"\nconfidence = 2.0", "`confidence` 2"),
            ("format = \"yolo\"\niou = -0.5", "`iou` -0.5"),
            ("format = \"yolo\"\ninput_type = \"f64\"", "`input_type`"),
        ] {
            std::fs::write(&path, SPEC.replace("format = \"yolo\"", change)).unwrap();
            let err = Manifest::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("custom-models.toml") && err.contains(key),
                "{change}: {err}"
            );
        }
        std::fs::write(
            &path,
            SPEC.replace("[1, 3, 640, 640]", "[1, 3, 4294967295, 640]"),
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("`input`"), "{err}");
        std::fs::write(&path, SPEC).unwrap();
        let err = Manifest::load(&path)
            .unwrap()
            .verified("plate_detector")
            .unwrap_err()
            .to_string();
        assert!(err.contains("custom-models.toml"), "{err}");
    }

    #[test]
    fn an_exported_model_is_checked_against_the_hash_its_export_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.toml");
        let exported = SPEC.replace(
            "sha256 = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"\n",
            "exported_by = \"scripts/export.py\"\nsetup_hint = \"scripts/setup --x\"\n",
        );
        std::fs::write(&path, &exported).unwrap();
        let manifest = Manifest::load(&path).unwrap();
        std::fs::create_dir(dir.path().join("onnx")).unwrap();
        std::fs::write(dir.path().join("onnx/x.onnx"), b"hello").unwrap();
        // Not exported yet: named with the step that exports it.
        let err = manifest
            .verified("vehicle_detector")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/setup --x"), "{err}");
        let sidecar = dir.path().join("onnx/x.onnx.sha256");
        std::fs::write(&sidecar, "not a hash\n").unwrap();
        let err = manifest
            .verified("vehicle_detector")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.onnx.sha256"), "{err}");
        std::fs::write(
            &sidecar,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n",
        )
        .unwrap();
        manifest.verified("vehicle_detector").unwrap();
        std::fs::write(dir.path().join("onnx/x.onnx"), b"hellx").unwrap();
        let err = manifest.verified("vehicle_detector").unwrap_err();
        assert!(matches!(err, ModelError::Checksum { .. }), "{err}");
        // A hash in the manifest as well would be a second, stale truth.
        std::fs::write(
            &path,
            exported.replace("exported_by", "sha256 = \"ab\"\nexported_by"),
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("exported_by"), "{err}");
        std::fs::write(
            &path,
            exported.replace("exported_by = \"scripts/export.py\"\n", ""),
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("`sha256` is missing"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.toml");
        std::fs::write(&path, SPEC.replace("licence", "licens")).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("licens"), "{err}");
    }
}
