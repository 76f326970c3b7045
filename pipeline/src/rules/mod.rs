//! Violation rules, each deciding from tracks (and, for red light, the signal) in image
//! geometry. Every rule reports a track at most once; the case store merges a vehicle
//! that comes back as a new track.

pub mod geometry;
pub mod helmet;
pub mod lane;
pub mod red_light;
pub mod speed;
pub mod wrong_way;
pub mod zone;

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use vigil_core::ViolationKind;
use vigil_models::BBox;

use crate::analysis::tracker::Track;
use crate::config::{CameraConfig, ConfigError};
use crate::signal::SignalState;
use geometry::Shape;

pub use helmet::{Head, NoHelmetConfig, NoHelmetRule};
pub use lane::{RestrictedLaneConfig, RestrictedLaneRule, SolidLineConfig, SolidLineRule};
pub use red_light::{Crossing, RedLightConfig, RedLightRule};
pub use speed::{SpeedConfig, SpeedRule};
pub use wrong_way::{WrongWayConfig, WrongWayRule};
pub use zone::{NoStoppingConfig, NoStoppingRule, SidewalkConfig, SidewalkRule, StopKind};

/// A decided violation of one rule by one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub track_id: u64,
    /// When it happened, from the start of the source.
    pub pts: Duration,
    /// A frame that shows it.
    pub frame: u64,
    /// A frame from before it, for the "before" key frame (the evidence falls back to the
    /// oldest frame still kept when this one is too old).
    pub before_frame: u64,
    /// Which configured rule decided it, by its key in the camera config.
    pub rule: String,
    /// One line for the key frames' caption, in capitals as on the evidence.
    pub caption: String,
    /// What the rule measured and the geometry it judged by, for the evidence manifest.
    pub facts: serde_json::Value,
    /// The signal when it happened, where the rule depends on one.
    pub signal: Option<SignalState>,
}

/// What a rule keeps per track, and the tracks it has reported (each at most once).
pub struct PerTrack<S> {
    pub states: HashMap<u64, S>,
    reported: HashSet<u64>,
}

impl<S> Default for PerTrack<S> {
    fn default() -> Self {
        Self {
            states: HashMap::new(),
            reported: HashSet::new(),
        }
    }
}

impl<S> PerTrack<S> {
    pub fn is_reported(&self, id: u64) -> bool {
        self.reported.contains(&id)
    }

    /// Mark the track reported, dropping its state; false if it already was.
    pub fn report(&mut self, id: u64) -> bool {
        self.states.remove(&id);
        self.reported.insert(id)
    }

    /// Whether to go on judging a track at its latest point: not reported yet, and in the
    /// rule's area (leaving the area forgets what was kept of it).
    pub fn judging(&mut self, id: u64, in_area: bool) -> bool {
        if self.is_reported(id) {
            return false;
        }
        if !in_area {
            self.states.remove(&id);
        }
        in_area
    }

    pub fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.states.retain(|id, _| alive(*id));
        self.reported.retain(|id| alive(*id));
    }
}

/// A rule that judges one track at a time from its points.
pub trait TrackRule: Send {
    /// Judge the track after its latest point (called once per detected frame of the
    /// track). `class` is the track's detector class by name.
    fn observe(&mut self, track: &Track, class: &str) -> Option<Violation>;

    /// The signal seen on a frame, before `observe` is called for that frame (only a
    /// rule that depends on the signal keeps it).
    fn signal(&mut self, _pts: Duration, _state: SignalState) {}

    /// Whether the rule wants a look at the rider's head of the track at its latest point
    /// (before `observe` for that point); only a rule whose config
    /// [`RuleConfig::needs_heads`] is asked.
    fn wants_head(&self, _track: &Track, _class: &str) -> bool {
        false
    }

    /// The rider's head the head model found at the track's latest point, if any (after
    /// `wants_head` asked for it, and only when the rider could be looked at).
    fn head(&mut self, _track: &Track, _head: Option<Head>) {}

    /// Drop the state kept for tracks that have ended.
    fn retain(&mut self, alive: &dyn Fn(u64) -> bool);
}

/// A rule's section of the camera config: it checks its own values and says where its
/// geometry lies. Adding a rule is its own file (this, a [`TrackRule`], their tests), its
/// section in [`CameraConfig`] (a field and a line in [`CameraConfig::rules`]), and its
/// row in the fine schedule.
pub trait RuleConfig {
    /// Check the section's values; `check` names them in messages (`speed[0].distance_m`).
    fn validate(&self, check: &Check) -> Result<(), ConfigError>;

    /// Every point of the rule's geometry, by the field that set it: checked against the
    /// analysed frame's size.
    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)>;

    /// What the rule judges by, in the picture: where a vehicle is near any of it, every
    /// frame counts (a crossing's time is interpolated between the frames either side of
    /// a line; a stand in a zone is timed frame by frame). Elsewhere a vehicle's path
    /// between two detections is as good as a detection on each frame.
    fn watched(&self) -> Vec<Shape>;

    /// Whether the rule needs the signal's state.
    fn needs_signal(&self) -> bool {
        false
    }

    /// Whether the rule judges riders' heads, and so needs the head model.
    fn needs_heads(&self) -> bool {
        false
    }

    /// The detector classes the section names, by the field that names them: each must
    /// be one the vehicle detector has, or the rule would silently never apply.
    fn classes(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }

    /// The rule, named by its section's key (`wrong_way[0]`).
    fn build(&self, name: String) -> Box<dyn TrackRule>;
}

/// Names a section's values in configuration errors, and checks the kinds of value every
/// rule has: points, lines, polygons, directions and positive numbers.
pub struct Check<'a> {
    pub path: &'a Path,
    /// The section's key: `red_light`, `speed[0]`.
    pub section: String,
}

impl Check<'_> {
    pub fn key(&self, field: &str) -> String {
        format!("{}.{field}", self.section)
    }

    pub fn invalid(&self, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key: self.key(field),
            message: message.into(),
        }
    }

    pub fn points(&self, field: &str, points: &[[f32; 2]]) -> Result<(), ConfigError> {
        if let Some(v) = points
            .iter()
            .flatten()
            .find(|v| !(0.0..=MAX_COORDINATE).contains(*v))
        {
            return Err(self.invalid(
                field,
                format!("coordinate {v} is not a pixel of a picture (0..={MAX_COORDINATE})"),
            ));
        }
        Ok(())
    }

    pub fn line(&self, field: &str, line: &[[f32; 2]; 2]) -> Result<(), ConfigError> {
        self.points(field, line)?;
        if line[0] == line[1] {
            return Err(self.invalid(field, "the two points are the same"));
        }
        Ok(())
    }

    pub fn polygon(&self, field: &str, polygon: &[[f32; 2]]) -> Result<(), ConfigError> {
        if polygon.len() < 3 {
            return Err(self.invalid(field, "a polygon needs at least three points"));
        }
        if polygon.len() > MAX_POINTS {
            return Err(self.invalid(field, format!("more than {MAX_POINTS} points")));
        }
        self.points(field, polygon)
    }

    pub fn vector(&self, field: &str, [dx, dy]: [f32; 2]) -> Result<(), ConfigError> {
        let bound = -MAX_COORDINATE..=MAX_COORDINATE;
        if !(bound.contains(&dx) && bound.contains(&dy)) || dx == 0.0 && dy == 0.0 {
            return Err(self.invalid(
                field,
                format!("[{dx}, {dy}] must be a non-zero vector of finite numbers"),
            ));
        }
        Ok(())
    }

    /// A number greater than zero and at most `max` (in `unit`).
    pub fn positive(
        &self,
        field: &str,
        value: f64,
        max: f64,
        unit: &str,
    ) -> Result<(), ConfigError> {
        if !(value > 0.0 && value <= max) {
            return Err(self.invalid(
                field,
                format!("{value} must be more than 0 and at most {max} {unit}"),
            ));
        }
        Ok(())
    }

    /// A number in `range` (in `unit`); NaN and infinities are in no range.
    pub fn within(
        &self,
        field: &str,
        value: f64,
        range: RangeInclusive<f64>,
        unit: &str,
    ) -> Result<(), ConfigError> {
        if !range.contains(&value) {
            return Err(self.invalid(
                field,
                format!(
                    "{value} is outside {}..={} {unit}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(())
    }
}

/// The largest pixel coordinate or distance a config may give: no camera's picture is
/// this wide, and every geometry is checked against the real frame once it is known.
pub const MAX_COORDINATE: f32 = 100_000.0;
/// The most points a polygon or polyline may have.
pub const MAX_POINTS: usize = 1_000;
/// The longest time a rule may wait for (seconds): a day.
pub const MAX_SECONDS: f64 = 86_400.0;

/// Every rule a camera runs, in the order its config lists the sections.
pub struct RuleSet {
    rules: Vec<Box<dyn TrackRule>>,
    watched: Vec<Shape>,
    needs_signal: bool,
    needs_heads: bool,
}

impl RuleSet {
    pub fn from_config(camera: &CameraConfig) -> Self {
        let sections = camera.rules();
        Self {
            rules: sections
                .iter()
                .map(|(key, r)| r.build(key.clone()))
                .collect(),
            watched: sections.iter().flat_map(|(_, r)| r.watched()).collect(),
            needs_signal: sections.iter().any(|(_, r)| r.needs_signal()),
            needs_heads: sections.iter().any(|(_, r)| r.needs_heads()),
        }
    }

    /// Whether any rule judges riders' heads.
    pub fn needs_heads(&self) -> bool {
        self.needs_heads
    }

    /// Whether any rule wants a look at the track's rider's head now.
    pub fn wants_head(&self, track: &Track, class: &str) -> bool {
        self.needs_heads && self.rules.iter().any(|r| r.wants_head(track, class))
    }

    /// What a look at the track's rider's head found.
    pub fn head(&mut self, track: &Track, head: Option<Head>) {
        for rule in &mut self.rules {
            rule.head(track, head);
        }
    }

    /// Whether any rule's geometry lies in `b` (see [`RuleConfig::watched`]).
    pub fn watches(&self, b: &BBox) -> bool {
        self.watched.iter().any(|s| s.touches(b))
    }

    /// Whether any rule needs the signal state.
    pub fn needs_signal(&self) -> bool {
        self.needs_signal
    }

    /// Record the signal seen on a frame, before `observe` is called for that frame.
    pub fn signal(&mut self, pts: Duration, state: SignalState) {
        for rule in &mut self.rules {
            rule.signal(pts, state);
        }
    }

    /// Judge a track after its latest point; the violations it commits with it.
    pub fn observe(&mut self, track: &Track, class: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        for rule in &mut self.rules {
            if let Some(v) = rule.observe(track, class) {
                tracing::debug!(track = track.id, rule = %v.rule, kind = v.kind.as_str(), t = ?v.pts, "violation");
                out.push(v);
            }
        }
        out
    }

    pub fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        for rule in &mut self.rules {
            rule.retain(alive);
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Synthetic tracks for the rules' unit tests.
    use std::time::Duration;

    use vigil_models::BBox;

    use crate::analysis::tracker::{Track, TrackPoint};

    /// A 40×30 px vehicle whose ground point (bottom centre) is at each (x, y) in turn,
    /// one frame every 200 ms from t = 0.
    pub fn track(id: u64, ground: &[(f32, f32)]) -> Track {
        let points = ground
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| TrackPoint {
                frame: i as u64,
                pts: Duration::from_millis(i as u64 * 200),
                bbox: BBox::new(x - 20.0, y - 30.0, x + 20.0, y),
                score: 0.9,
                class_id: 0,
            })
            .collect();
        Track::from_points(id, points).expect("points")
    }

    /// The track as it stood after its first `n` points.
    pub fn prefix(t: &Track, n: usize) -> Track {
        let mut p = t.clone();
        p.points.truncate(n);
        p
    }

    /// Feed a track to `observe` point by point, as the analyzer does; every violation
    /// with the number of points seen when it was reported.
    pub fn replay<V>(t: &Track, mut observe: impl FnMut(&Track) -> Option<V>) -> Vec<(usize, V)> {
        (1..=t.points.len())
            .filter_map(|n| observe(&prefix(t, n)).map(|v| (n, v)))
            .collect()
    }
}
