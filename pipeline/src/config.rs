//! A camera's configuration (TOML): who it is, where it stands, how often it is analysed,
//! its signal, and the rules its site has. Each rule's section is that rule's own config
//! type ([`crate::rules`]), which checks its values and names its geometry; here they are
//! listed once ([`CameraConfig::rules`]) and checked together.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::rules::{
    Check, NoHelmetConfig, NoStoppingConfig, RedLightConfig, RestrictedLaneConfig, RuleConfig,
    SidewalkConfig, SolidLineConfig, SpeedConfig, WrongWayConfig,
};
use crate::signal::SignalConfig;

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
    /// Where the camera stands (WGS 84), for the cameras map.
    #[serde(default)]
    pub position: Option<Position>,
    /// Frames per second analysed (decoded frames are dropped down to this rate).
    #[serde(default = "default_analysis_fps")]
    pub analysis_fps: u32,
    /// The longest side (pixels, a multiple of 32) the analysed frame is fitted to for the
    /// vehicle detector; the model's own `size` when absent. A camera whose vehicles are
    /// small in its picture (a sub-stream, the far side of a wide junction) sets it larger,
    /// at about (size / 640)² the detector's time.
    #[serde(default)]
    pub detector_size: Option<u32>,
    /// Where the signal state comes from; needed by the red-light rule.
    #[serde(default)]
    pub signal: Option<SignalConfig>,
    // The rules, each optional: a camera runs the ones its site has.
    #[serde(default)]
    pub red_light: Option<RedLightConfig>,
    #[serde(default)]
    pub wrong_way: Vec<WrongWayConfig>,
    #[serde(default)]
    pub solid_line: Vec<SolidLineConfig>,
    #[serde(default)]
    pub restricted_lane: Vec<RestrictedLaneConfig>,
    #[serde(default)]
    pub sidewalk: Vec<SidewalkConfig>,
    #[serde(default)]
    pub no_stopping: Vec<NoStoppingConfig>,
    #[serde(default)]
    pub speed: Vec<SpeedConfig>,
    #[serde(default)]
    pub no_helmet: Option<NoHelmetConfig>,
    #[serde(skip)]
    pub sha256: String,
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub lat: f64,
    pub lon: f64,
}

/// The vehicle kinds Vigil's rules and fines know, whatever detector runs (each
/// detector's classes are these, or are mapped to them in models.toml's `kinds`).
pub const VEHICLE_KINDS: [&str; 6] = ["motorbike", "car", "bus", "lorry", "van", "tuktuk"];

/// The longest name or location a camera may have, in characters.
const MAX_TEXT: usize = 200;

fn default_analysis_fps() -> u32 {
    5
}

/// `name[i]` for the i-th section of a list, `name` for a single one.
fn keyed<'a, R: RuleConfig + 'a>(
    name: &str,
    sections: impl IntoIterator<Item = &'a R>,
    single: bool,
) -> Vec<(String, &'a dyn RuleConfig)> {
    sections
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let key = if single {
                name.to_string()
            } else {
                format!("{name}[{i}]")
            };
            (key, r as &dyn RuleConfig)
        })
        .collect()
}

impl CameraConfig {
    /// Every rule section configured, by its key (`red_light`, `speed[0]`), in the order
    /// the rules run.
    pub fn rules(&self) -> Vec<(String, &dyn RuleConfig)> {
        let mut all = keyed("red_light", &self.red_light, true);
        all.extend(keyed("wrong_way", &self.wrong_way, false));
        all.extend(keyed("solid_line", &self.solid_line, false));
        all.extend(keyed("restricted_lane", &self.restricted_lane, false));
        all.extend(keyed("sidewalk", &self.sidewalk, false));
        all.extend(keyed("no_stopping", &self.no_stopping, false));
        all.extend(keyed("speed", &self.speed, false));
        all.extend(keyed("no_helmet", &self.no_helmet, true));
        all
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        Self::from_text(&text, path)
    }

    /// A camera config from its text; `origin` names where it came from in errors (a file,
    /// or the fleet's camera list).
    pub fn from_text(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let mut config: CameraConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        config.path = origin.to_owned();
        config.validate()?;
        Ok(config)
    }

    fn check(&self, section: &str) -> Check<'_> {
        Check {
            path: &self.path,
            section: section.to_string(),
        }
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(message) = vigil_core::event::check_camera_id(&self.id) {
            return Err(self.invalid("id", message));
        }
        for (key, text) in [("name", &self.name), ("location", &self.location)] {
            if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
                return Err(self.invalid(key, format!("must be 1 to {MAX_TEXT} characters")));
            }
        }
        if let Some(p) = self.position
            && !((-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lon))
        {
            return Err(self.invalid(
                "position",
                format!(
                    "lat {} / lon {} is not a place on Earth (lat -90..90, lon -180..180)",
                    p.lat, p.lon
                ),
            ));
        }
        if !(1..=30).contains(&self.analysis_fps) {
            return Err(self.invalid(
                "analysis_fps",
                format!("{} is outside 1..=30", self.analysis_fps),
            ));
        }
        if let Some(size) = self.detector_size
            && !((32..=4096).contains(&size) && size % 32 == 0)
        {
            return Err(self.invalid(
                "detector_size",
                format!("{size} is not a multiple of 32 within 32..=4096"),
            ));
        }
        let rules = self.rules();
        if rules.is_empty() {
            return Err(self.invalid(
                "red_light",
                "the camera has no rules: configure at least one of red_light, wrong_way, \
                 solid_line, restricted_lane, sidewalk, no_stopping, speed, no_helmet",
            ));
        }
        for (key, rule) in &rules {
            rule.validate(&self.check(key))?;
            if rule.needs_signal() && self.signal.is_none() {
                return Err(self.invalid(
                    "signal",
                    format!("the {key} rule needs a [signal] section (region or schedule)"),
                ));
            }
        }
        if let Some(signal) = &self.signal {
            signal.validate(&self.check("signal"))?;
        }
        Ok(())
    }

    /// Check that every class a rule names is one of the vehicle detector's or one of
    /// Vigil's vehicle kinds ([`VEHICLE_KINDS`]): a lane allowed to `lorry` where the
    /// detector says `truck` would fine every truck. A kind the detector never reports
    /// (a COCO model has no `van`) is allowed, so one camera file serves any detector.
    pub fn check_classes(&self, known: &[String]) -> Result<(), ConfigError> {
        let allowed = |c: &String| known.contains(c) || VEHICLE_KINDS.contains(&c.as_str());
        for (section, rule) in self.rules() {
            for (field, classes) in rule.classes() {
                if let Some(c) = classes.iter().find(|c| !allowed(c)) {
                    return Err(self.check(&section).invalid(
                        &field,
                        format!(
                            "`{c}` is not a class of the vehicle detector ({}) nor one of \
                             Vigil's vehicle kinds ({})",
                            known.join(", "),
                            VEHICLE_KINDS.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Check the geometry against the analysed frame size, known once the video is open.
    pub fn check_frame_size(&self, width: u32, height: u32) -> Result<(), ConfigError> {
        let (w, h) = (width as f32, height as f32);
        for (section, rule) in self.rules() {
            for (field, points) in rule.points() {
                if let Some(p) = points.iter().find(|[x, y]| *x > w || *y > h) {
                    return Err(self.check(&section).invalid(
                        &field,
                        format!("the point {p:?} lies outside the {width}x{height} frame"),
                    ));
                }
            }
        }
        if let Some(signal) = &self.signal {
            signal.check_frame_size(&self.check("signal"), width, height)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::StopKind;

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
        assert!(
            matches!(c.signal, Some(SignalConfig::Schedule { ref phases, .. }) if phases.len() == 2)
        );
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
        for size in ["100", "0", "8192"] {
            let err = load(&GOOD.replace(
                "location = \"Here\"",
                &format!("location = \"Here\"\ndetector_size = {size}"),
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("detector_size"), "{size}: {err}");
        }
        let c = load(&GOOD.replace(
            "location = \"Here\"",
            "location = \"Here\"\ndetector_size = 1280",
        ))
        .unwrap();
        assert_eq!(c.detector_size, Some(1280));
    }

    const RULES_ONLY: &str = r#"
id = "cam"
name = "Cam"
location = "Here"
[[wrong_way]]
lane = [[0.0, 200.0], [640.0, 200.0], [640.0, 360.0], [0.0, 360.0]]
direction = [1.0, 0.0]
[[solid_line]]
points = [[0.0, 260.0], [640.0, 260.0]]
[[restricted_lane]]
lane = [[0.0, 0.0], [640.0, 0.0], [640.0, 100.0]]
allowed = ["car", "bus"]
[[sidewalk]]
zone = [[0.0, 330.0], [640.0, 330.0], [640.0, 360.0]]
[[no_stopping]]
zone = [[300.0, 300.0], [640.0, 300.0], [640.0, 360.0]]
max_seconds = 30
kind = "no_parking"
[[speed]]
line_a = [[200.0, 0.0], [200.0, 360.0]]
line_b = [[440.0, 0.0], [440.0, 360.0]]
distance_m = 12.0
limit_kmh = 40
class_limits = { lorry = 30 }
"#;

    #[test]
    fn a_camera_may_run_any_rules_without_a_signal() {
        let c = load(RULES_ONLY).unwrap();
        assert!(c.red_light.is_none() && c.signal.is_none());
        assert_eq!(c.wrong_way[0].min_distance, 60.0);
        assert_eq!(c.no_stopping[0].kind, StopKind::NoParking);
        assert_eq!(c.speed[0].tolerance_kmh, 3.0);
        assert!(c.check_frame_size(640, 360).is_ok());
    }

    #[test]
    fn each_rules_mistakes_name_their_key() {
        let cases = [
            // A polygon needs three points.
            (
                RULES_ONLY.replace(
                    "zone = [[0.0, 330.0], [640.0, 330.0], [640.0, 360.0]]",
                    "zone = [[0.0, 330.0], [640.0, 330.0]]",
                ),
                "sidewalk[0].zone",
            ),
            (
                RULES_ONLY.replace("direction = [1.0, 0.0]", "direction = [0.0, 0.0]"),
                "wrong_way[0].direction",
            ),
            (
                RULES_ONLY.replace("distance_m = 12.0", "distance_m = -12.0"),
                "speed[0].distance_m",
            ),
            (
                RULES_ONLY.replace("lorry = 30", "lorry = 0"),
                "speed[0].class_limits.lorry",
            ),
            (
                RULES_ONLY.replace("allowed = [\"car\", \"bus\"]", "allowed = []"),
                "restricted_lane[0].allowed",
            ),
            (
                RULES_ONLY.replace("max_seconds = 30", "max_seconds = 0"),
                "no_stopping[0].max_seconds",
            ),
            (
                RULES_ONLY.replace(
                    "points = [[0.0, 260.0], [640.0, 260.0]]",
                    "points = [[0.0, 260.0]]",
                ),
                "solid_line[0].points",
            ),
        ];
        for (text, key) in cases {
            let err = load(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        // No rule at all.
        let bare = "id = \"cam\"\nname = \"Cam\"\nlocation = \"Here\"\n";
        assert!(load(bare).unwrap_err().to_string().contains("no rules"));
        let no_signal = GOOD.split("[signal]").next().unwrap();
        let err = load(no_signal).unwrap_err().to_string();
        assert!(
            err.contains("`signal`") && err.contains("red_light rule"),
            "{err}"
        );
    }

    #[test]
    fn a_controller_feed_needs_an_http_url() {
        let with = |signal: &str| {
            let text = GOOD.split("[signal]").next().unwrap().to_string() + "[signal]\n" + signal;
            load(&text)
        };
        let c = with("source = \"controller\"\nurl = \"http://10.1.2.3:8080/phase\"\n").unwrap();
        assert!(matches!(
            c.signal,
            Some(SignalConfig::Controller {
                poll_ms: 200,
                stale_ms: 1000,
                camera_latency_ms: 0,
                ..
            })
        ));
        let err = with("source = \"controller\"\nurl = \"not a url\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("signal.url"), "{err}");
        let err = with("source = \"controller\"\nurl = \"ftp://10.1.2.3/phase\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("signal.url") && err.contains("ftp"), "{err}");
    }

    #[test]
    fn any_rules_geometry_outside_the_frame_names_its_key() {
        let c = load(&RULES_ONLY.replace("[300.0, 300.0]", "[300.0, 400.0]")).unwrap();
        let err = c.check_frame_size(640, 360).unwrap_err().to_string();
        assert!(
            err.contains("no_stopping[0].zone") && err.contains("[300.0, 400.0]"),
            "{err}"
        );
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
