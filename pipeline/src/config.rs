//! Per-camera configuration (TOML).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("camera config {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `toml`'s message carries the line, column and key.
    #[error("camera config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("camera config {path}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub id: String,
    pub name: String,
    pub location: String,
    /// Frames per second analysed (decoded frames are dropped down to this rate).
    #[serde(default = "default_analysis_fps")]
    pub analysis_fps: u32,
    pub red_light: RedLightConfig,
    pub signal: SignalConfig,
    #[serde(skip)]
    pub sha256: String,
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_analysis_fps() -> u32 {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedLightConfig {
    /// Two points of the stop line, in pixels of the analysed frame.
    pub stop_line: [[f32; 2]; 2],
    /// Direction of travel, as a vector in image coordinates.
    pub direction: [f32; 2],
    /// How long the signal must have been red when the vehicle reaches the line: a
    /// vehicle that reaches it as the lamp changes could not have stopped.
    #[serde(default = "default_red_dwell")]
    pub red_dwell_seconds: f64,
    /// How far past the line (as a share of the vehicle's length along the direction of
    /// travel) its front must get before the crossing counts: a vehicle stopped on the
    /// line, its box jittering across it, never crosses.
    #[serde(default = "default_confirm_fraction")]
    pub confirm_fraction: f32,
    /// Lanes where turning right on red is allowed (a sign says so), as polygons in
    /// pixels; a vehicle reaching the line inside one is not in violation.
    #[serde(default)]
    pub right_turn_on_red: Vec<Vec<[f32; 2]>>,
}

fn default_red_dwell() -> f64 {
    0.5
}

fn default_confirm_fraction() -> f32 {
    0.15
}

/// Where the signal state comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignalConfig {
    /// The signal head is in the picture: classify the lit lamp by colour.
    Region {
        /// x, y, width, height in pixels.
        region: [u32; 4],
    },
    /// A fixed-time controller: phases repeat from `offset_seconds` into the video.
    Schedule {
        phases: Vec<Phase>,
        #[serde(default)]
        offset_seconds: f64,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub state: crate::signal::SignalState,
    pub seconds: f64,
}

impl CameraConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        let mut config: CameraConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.sha256 = hex::encode(Sha256::digest(&bytes));
        config.path = path.to_owned();
        config.validate()?;
        Ok(config)
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.id.trim().is_empty() {
            return Err(self.invalid("id", "must not be empty"));
        }
        if !(1..=30).contains(&self.analysis_fps) {
            return Err(self.invalid(
                "analysis_fps",
                format!("{} is outside 1..=30", self.analysis_fps),
            ));
        }
        let [a, b] = self.red_light.stop_line;
        if a == b {
            return Err(self.invalid("red_light.stop_line", "the two points are the same"));
        }
        if self
            .red_light
            .stop_line
            .iter()
            .flatten()
            .any(|v| !v.is_finite() || *v < 0.0)
        {
            return Err(self.invalid(
                "red_light.stop_line",
                "coordinates must be finite and not negative",
            ));
        }
        let [dx, dy] = self.red_light.direction;
        if !(dx.is_finite() && dy.is_finite()) || dx == 0.0 && dy == 0.0 {
            return Err(self.invalid("red_light.direction", "must be a non-zero vector"));
        }
        match &self.signal {
            SignalConfig::Region { region } => {
                if region[2] == 0 || region[3] == 0 {
                    return Err(self.invalid("signal.region", "width and height must be positive"));
                }
            }
            SignalConfig::Schedule { phases, .. } => {
                if phases.is_empty()
                    || phases
                        .iter()
                        .any(|p| !p.seconds.is_finite() || p.seconds <= 0.0)
                {
                    return Err(self.invalid(
                        "signal.phases",
                        "needs at least one phase, each of positive length",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Check the geometry against the analysed frame size, known once the video is open.
    pub fn check_frame_size(&self, width: u32, height: u32) -> Result<(), ConfigError> {
        let (w, h) = (width as f32, height as f32);
        if self
            .red_light
            .stop_line
            .iter()
            .any(|[x, y]| *x > w || *y > h)
        {
            return Err(self.invalid(
                "red_light.stop_line",
                format!(
                    "{:?} lies outside the {width}x{height} frame",
                    self.red_light.stop_line
                ),
            ));
        }
        if let SignalConfig::Region {
            region: [x, y, rw, rh],
        } = self.signal
            && (x + rw > width || y + rh > height)
        {
            return Err(self.invalid(
                "signal.region",
                format!("lies outside the {width}x{height} frame"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "cam"
name = "Cam"
location = "Here"
[red_light]
stop_line = [[10.0, 0.0], [10.0, 100.0]]
direction = [1.0, 0.0]
[signal]
source = "schedule"
phases = [{ state = "green", seconds = 3 }, { state = "red", seconds = 5 }]
"#;

    fn load(text: &str) -> Result<CameraConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cam.toml");
        std::fs::write(&path, text).unwrap();
        CameraConfig::load(&path)
    }

    #[test]
    fn a_good_config_loads_with_defaults_and_a_hash() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.analysis_fps, 5);
        assert_eq!(c.sha256.len(), 64);
        assert!(matches!(c.signal, SignalConfig::Schedule { ref phases, .. } if phases.len() == 2));
    }

    #[test]
    fn unknown_key_is_reported_with_file_line_and_key() {
        let err = load(&GOOD.replace("direction", "directoin"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cam.toml"), "{err}");
        assert!(err.contains("directoin"), "{err}");
        assert!(err.contains("line 7"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = load(&GOOD.replace("[1.0, 0.0]", "[0.0, 0.0]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("red_light.direction"), "{err}");
        let err = load(&GOOD.replace("seconds = 3", "seconds = 0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("signal.phases"), "{err}");
        let err = load(&GOOD.replace("\"green\"", "\"purple\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("purple"), "{err}");
    }

    #[test]
    fn geometry_outside_the_frame_is_rejected() {
        let c = load(&GOOD.replace("[10.0, 100.0]", "[10.0, 500.0]")).unwrap();
        assert!(
            c.check_frame_size(640, 360)
                .unwrap_err()
                .to_string()
                .contains("outside the 640x360 frame")
        );
        assert!(c.check_frame_size(640, 640).is_ok());
    }
}
