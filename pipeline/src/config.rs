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
    /// Where the camera stands (WGS 84), for the cameras map.
    #[serde(default)]
    pub position: Option<Position>,
    /// Frames per second analysed (decoded frames are dropped down to this rate).
    #[serde(default = "default_analysis_fps")]
    pub analysis_fps: u32,
    /// Each rule is optional; a camera runs the ones its site has.
    #[serde(default)]
    pub red_light: Option<RedLightConfig>,
    /// Where the signal state comes from; needed by the red-light rule.
    #[serde(default)]
    pub signal: Option<SignalConfig>,
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

/// A lane with one direction of travel: moving against it is driving the wrong way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrongWayConfig {
    /// The lane, as a polygon in pixels.
    pub lane: Vec<[f32; 2]>,
    /// The lawful direction of travel, as a vector in image coordinates.
    pub direction: [f32; 2],
    /// How far (pixels, along the direction) a vehicle must move against it: a vehicle
    /// nudging back while manoeuvring is not driving the wrong way.
    #[serde(default = "default_wrong_way_distance")]
    pub min_distance: f32,
}

fn default_wrong_way_distance() -> f32 {
    60.0
}

/// A solid line (or divider) that must not be crossed, as a polyline in pixels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolidLineConfig {
    pub points: Vec<[f32; 2]>,
    /// How far (pixels) a vehicle's ground point must be on each side for the crossing to
    /// count: a wheel brushing the paint, or box jitter, is not a crossing.
    #[serde(default = "default_solid_line_margin")]
    pub margin: f32,
}

fn default_solid_line_margin() -> f32 {
    8.0
}

/// A lane closed to some classes (e.g. a car-only lane); a vehicle of another class
/// driving in it is in the wrong lane.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictedLaneConfig {
    pub lane: Vec<[f32; 2]>,
    /// Detector classes allowed in the lane.
    pub allowed: Vec<String>,
    /// How long a vehicle must be in the lane before it counts.
    #[serde(default = "default_zone_seconds")]
    pub min_seconds: f64,
}

fn default_zone_seconds() -> f64 {
    1.0
}

/// A sidewalk: a vehicle moving along it is driving on the sidewalk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidewalkConfig {
    pub zone: Vec<[f32; 2]>,
    /// How far (pixels) the vehicle must move inside the zone: a vehicle whose box edge
    /// clips the kerb while passing is not on the sidewalk.
    #[serde(default = "default_sidewalk_distance")]
    pub min_distance: f32,
}

fn default_sidewalk_distance() -> f32 {
    40.0
}

/// A zone where stopping (or parking) is forbidden.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoStoppingConfig {
    pub zone: Vec<[f32; 2]>,
    /// How long a vehicle may stand in the zone.
    pub max_seconds: f64,
    /// `no_stopping` (the default) or `no_parking`: the sign decides the fine.
    #[serde(default = "default_stop_kind")]
    pub kind: StopKind,
    /// Movement (as a share of the vehicle's box width) that still counts as standing:
    /// boxes jitter around a parked car.
    #[serde(default = "default_still_fraction")]
    pub still_fraction: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    NoStopping,
    NoParking,
}

fn default_stop_kind() -> StopKind {
    StopKind::NoStopping
}

fn default_still_fraction() -> f32 {
    0.25
}

/// A speed trap: two lines across the road a measured distance apart on the ground.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeedConfig {
    pub line_a: [[f32; 2]; 2],
    pub line_b: [[f32; 2]; 2],
    /// Distance between the lines on the road, in metres (surveyed on site).
    pub distance_m: f64,
    /// The limit, km/h.
    pub limit_kmh: f64,
    /// Limits for particular detector classes (e.g. `{ truck = 50 }`), km/h.
    #[serde(default)]
    pub class_limits: std::collections::BTreeMap<String, f64>,
    /// Subtracted from every measured speed before comparing it with the limit: the
    /// measurement's error (frame timing, box jitter) must never make a ticket.
    #[serde(default = "default_speed_tolerance")]
    pub tolerance_kmh: f64,
}

fn default_speed_tolerance() -> f64 {
    3.0
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
    /// The signal controller's feed, polled over HTTP (live cameras).
    Controller {
        /// Answers `{"state": "red"|"amber"|"green", "since": "<RFC 3339>"}`.
        url: String,
        #[serde(default = "default_poll_ms")]
        poll_ms: u64,
        /// A reading older than this says nothing: the state is unknown.
        #[serde(default = "default_stale_ms")]
        stale_ms: u64,
        /// How far the camera's picture lags real time (encoder, network buffering):
        /// each frame is matched with the controller's state this much earlier.
        #[serde(default)]
        camera_latency_ms: u64,
    },
}

fn default_poll_ms() -> u64 {
    200
}

fn default_stale_ms() -> u64 {
    1000
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
        let rules = self.red_light.iter().count()
            + self.wrong_way.len()
            + self.solid_line.len()
            + self.restricted_lane.len()
            + self.sidewalk.len()
            + self.no_stopping.len()
            + self.speed.len();
        if rules == 0 {
            return Err(self.invalid(
                "red_light",
                "the camera has no rules: configure at least one of red_light, wrong_way, \
                 solid_line, restricted_lane, sidewalk, no_stopping, speed",
            ));
        }
        if let Some(red_light) = &self.red_light {
            self.check_line("red_light.stop_line", &red_light.stop_line)?;
            self.check_vector("red_light.direction", red_light.direction)?;
            for (i, lane) in red_light.right_turn_on_red.iter().enumerate() {
                self.check_polygon(&format!("red_light.right_turn_on_red[{i}]"), lane)?;
            }
            if self.signal.is_none() {
                return Err(self.invalid(
                    "signal",
                    "the red-light rule needs a [signal] section (region or schedule)",
                ));
            }
        }
        match &self.signal {
            Some(SignalConfig::Region { region }) if region[2] == 0 || region[3] == 0 => {
                return Err(self.invalid("signal.region", "width and height must be positive"));
            }
            Some(SignalConfig::Schedule { phases, .. })
                if phases.is_empty()
                    || phases
                        .iter()
                        .any(|p| !p.seconds.is_finite() || p.seconds <= 0.0) =>
            {
                return Err(self.invalid(
                    "signal.phases",
                    "needs at least one phase, each of positive length",
                ));
            }
            Some(SignalConfig::Controller { url, poll_ms, .. }) => {
                match url::Url::parse(url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    Ok(u) => {
                        return Err(self.invalid(
                            "signal.url",
                            format!("scheme {} is not http or https", u.scheme()),
                        ));
                    }
                    Err(e) => return Err(self.invalid("signal.url", format!("{url:?}: {e}"))),
                }
                if *poll_ms < 20 {
                    return Err(self.invalid("signal.poll_ms", "must be at least 20"));
                }
            }
            _ => {}
        }
        for (i, r) in self.wrong_way.iter().enumerate() {
            self.check_polygon(&format!("wrong_way[{i}].lane"), &r.lane)?;
            self.check_vector(&format!("wrong_way[{i}].direction"), r.direction)?;
            self.check_positive(
                &format!("wrong_way[{i}].min_distance"),
                r.min_distance as f64,
            )?;
        }
        for (i, r) in self.solid_line.iter().enumerate() {
            let key = format!("solid_line[{i}].points");
            if r.points.len() < 2 {
                return Err(self.invalid(&key, "needs at least two points"));
            }
            self.check_points(&key, &r.points)?;
            if r.points.windows(2).any(|w| w[0] == w[1]) {
                return Err(self.invalid(&key, "two consecutive points are the same"));
            }
            self.check_positive(&format!("solid_line[{i}].margin"), r.margin as f64)?;
        }
        for (i, r) in self.restricted_lane.iter().enumerate() {
            self.check_polygon(&format!("restricted_lane[{i}].lane"), &r.lane)?;
            if r.allowed.is_empty() {
                return Err(self.invalid(
                    &format!("restricted_lane[{i}].allowed"),
                    "names no class: list the classes allowed in the lane",
                ));
            }
            self.check_positive(&format!("restricted_lane[{i}].min_seconds"), r.min_seconds)?;
        }
        for (i, r) in self.sidewalk.iter().enumerate() {
            self.check_polygon(&format!("sidewalk[{i}].zone"), &r.zone)?;
            self.check_positive(
                &format!("sidewalk[{i}].min_distance"),
                r.min_distance as f64,
            )?;
        }
        for (i, r) in self.no_stopping.iter().enumerate() {
            self.check_polygon(&format!("no_stopping[{i}].zone"), &r.zone)?;
            self.check_positive(&format!("no_stopping[{i}].max_seconds"), r.max_seconds)?;
            self.check_positive(
                &format!("no_stopping[{i}].still_fraction"),
                r.still_fraction as f64,
            )?;
        }
        for (i, r) in self.speed.iter().enumerate() {
            self.check_line(&format!("speed[{i}].line_a"), &r.line_a)?;
            self.check_line(&format!("speed[{i}].line_b"), &r.line_b)?;
            self.check_positive(&format!("speed[{i}].distance_m"), r.distance_m)?;
            self.check_positive(&format!("speed[{i}].limit_kmh"), r.limit_kmh)?;
            for (class, limit) in &r.class_limits {
                self.check_positive(&format!("speed[{i}].class_limits.{class}"), *limit)?;
            }
            if !r.tolerance_kmh.is_finite() || r.tolerance_kmh < 0.0 {
                return Err(self.invalid(
                    &format!("speed[{i}].tolerance_kmh"),
                    "must be a finite number, zero or more",
                ));
            }
        }
        Ok(())
    }

    fn check_points(&self, key: &str, points: &[[f32; 2]]) -> Result<(), ConfigError> {
        if points.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(self.invalid(key, "coordinates must be finite and not negative"));
        }
        Ok(())
    }

    fn check_line(&self, key: &str, line: &[[f32; 2]; 2]) -> Result<(), ConfigError> {
        if line[0] == line[1] {
            return Err(self.invalid(key, "the two points are the same"));
        }
        self.check_points(key, line)
    }

    fn check_polygon(&self, key: &str, polygon: &[[f32; 2]]) -> Result<(), ConfigError> {
        if polygon.len() < 3 {
            return Err(self.invalid(key, "a polygon needs at least three points"));
        }
        self.check_points(key, polygon)
    }

    fn check_vector(&self, key: &str, [dx, dy]: [f32; 2]) -> Result<(), ConfigError> {
        if !(dx.is_finite() && dy.is_finite()) || dx == 0.0 && dy == 0.0 {
            return Err(self.invalid(key, "must be a non-zero vector"));
        }
        Ok(())
    }

    fn check_positive(&self, key: &str, value: f64) -> Result<(), ConfigError> {
        if !value.is_finite() || value <= 0.0 {
            return Err(self.invalid(key, format!("{value} must be a positive number")));
        }
        Ok(())
    }

    /// Every point of the camera's geometry, by the key that set it.
    fn geometry(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        let mut out = Vec::new();
        if let Some(r) = &self.red_light {
            out.push(("red_light.stop_line".to_string(), r.stop_line.to_vec()));
            for (i, lane) in r.right_turn_on_red.iter().enumerate() {
                out.push((format!("red_light.right_turn_on_red[{i}]"), lane.clone()));
            }
        }
        for (i, r) in self.wrong_way.iter().enumerate() {
            out.push((format!("wrong_way[{i}].lane"), r.lane.clone()));
        }
        for (i, r) in self.solid_line.iter().enumerate() {
            out.push((format!("solid_line[{i}].points"), r.points.clone()));
        }
        for (i, r) in self.restricted_lane.iter().enumerate() {
            out.push((format!("restricted_lane[{i}].lane"), r.lane.clone()));
        }
        for (i, r) in self.sidewalk.iter().enumerate() {
            out.push((format!("sidewalk[{i}].zone"), r.zone.clone()));
        }
        for (i, r) in self.no_stopping.iter().enumerate() {
            out.push((format!("no_stopping[{i}].zone"), r.zone.clone()));
        }
        for (i, r) in self.speed.iter().enumerate() {
            out.push((format!("speed[{i}].line_a"), r.line_a.to_vec()));
            out.push((format!("speed[{i}].line_b"), r.line_b.to_vec()));
        }
        out
    }

    /// Check the geometry against the analysed frame size, known once the video is open.
    pub fn check_frame_size(&self, width: u32, height: u32) -> Result<(), ConfigError> {
        let (w, h) = (width as f32, height as f32);
        for (key, points) in self.geometry() {
            if let Some(p) = points.iter().find(|[x, y]| *x > w || *y > h) {
                return Err(self.invalid(
                    &key,
                    format!("the point {p:?} lies outside the {width}x{height} frame"),
                ));
            }
        }
        if let Some(SignalConfig::Region {
            region: [x, y, rw, rh],
        }) = self.signal
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
            err.contains("`signal`") && err.contains("red-light rule"),
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
