//! Violation rules, each deciding from tracks (and, for red light, the signal) in image
//! geometry. Every rule reports a track at most once; the case store merges a vehicle
//! that comes back as a new track.

pub mod geometry;
pub mod lane;
pub mod red_light;
pub mod speed;
pub mod wrong_way;
pub mod zone;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use vigil_core::ViolationKind;

use vigil_models::BBox;

use crate::config::CameraConfig;
use crate::signal::SignalState;
use crate::tracker::Track;
use geometry::Shape;

pub use lane::{RestrictedLaneRule, SolidLineRule};
pub use red_light::{Crossing, RedLightRule};
pub use speed::SpeedRule;
pub use wrong_way::WrongWayRule;
pub use zone::{NoStoppingRule, SidewalkRule};

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

    /// Drop the state kept for tracks that have ended.
    fn retain(&mut self, alive: &dyn Fn(u64) -> bool);
}

/// Every rule a camera runs.
pub struct RuleSet {
    red_light: Option<RedLightRule>,
    rules: Vec<Box<dyn TrackRule>>,
    watched: Vec<Shape>,
}

/// What the rules judge by, in the picture: where a vehicle is near any of it, every frame
/// counts (a crossing's time is interpolated between the frames either side of a line; a
/// stand in a zone is timed frame by frame). Elsewhere a vehicle's path between two
/// detections is as good as a detection on each frame.
fn watched(camera: &CameraConfig) -> Vec<Shape> {
    let mut shapes = Vec::new();
    if let Some(r) = &camera.red_light {
        // A right turn on red is judged where the front is first seen past the line,
        // which is near the line.
        shapes.push(Shape::line(&r.stop_line));
    }
    for s in &camera.speed {
        shapes.push(Shape::line(&s.line_a));
        shapes.push(Shape::line(&s.line_b));
    }
    for c in &camera.solid_line {
        shapes.push(Shape::line(&c.points));
    }
    let areas = camera
        .wrong_way
        .iter()
        .map(|c| &c.lane)
        .chain(camera.restricted_lane.iter().map(|c| &c.lane))
        .chain(camera.sidewalk.iter().map(|c| &c.zone))
        .chain(camera.no_stopping.iter().map(|c| &c.zone));
    shapes.extend(areas.map(|a| Shape::area(a)));
    shapes
}

impl RuleSet {
    pub fn from_config(camera: &CameraConfig) -> Self {
        let mut rules: Vec<Box<dyn TrackRule>> = Vec::new();
        for (i, c) in camera.wrong_way.iter().enumerate() {
            rules.push(Box::new(WrongWayRule::new(format!("wrong_way[{i}]"), c)));
        }
        for (i, c) in camera.solid_line.iter().enumerate() {
            rules.push(Box::new(SolidLineRule::new(format!("solid_line[{i}]"), c)));
        }
        for (i, c) in camera.restricted_lane.iter().enumerate() {
            rules.push(Box::new(RestrictedLaneRule::new(
                format!("restricted_lane[{i}]"),
                c,
            )));
        }
        for (i, c) in camera.sidewalk.iter().enumerate() {
            rules.push(Box::new(SidewalkRule::new(format!("sidewalk[{i}]"), c)));
        }
        for (i, c) in camera.no_stopping.iter().enumerate() {
            rules.push(Box::new(NoStoppingRule::new(
                format!("no_stopping[{i}]"),
                c,
            )));
        }
        for (i, c) in camera.speed.iter().enumerate() {
            rules.push(Box::new(SpeedRule::new(format!("speed[{i}]"), c)));
        }
        Self {
            red_light: camera.red_light.as_ref().map(RedLightRule::new),
            rules,
            watched: watched(camera),
        }
    }

    /// Whether any rule's geometry lies in `b` (see [`watched`]).
    pub fn watches(&self, b: &BBox) -> bool {
        self.watched.iter().any(|s| s.touches(b))
    }

    /// Whether any rule needs the signal state.
    pub fn needs_signal(&self) -> bool {
        self.red_light.is_some()
    }

    /// Record the signal seen on a frame, before `observe` is called for that frame.
    pub fn signal(&mut self, pts: Duration, state: SignalState) {
        if let Some(r) = &mut self.red_light {
            r.signal(pts, state);
        }
    }

    /// Judge a track after its latest point; the violations it commits with it.
    pub fn observe(&mut self, track: &Track, class: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(rule) = &mut self.red_light
            && let Some(crossing) = rule.observe(track)
        {
            tracing::debug!(track = track.id, signal = crossing.signal.as_str(), red_for = ?crossing.red_for, exempt = ?crossing.exempt, t = ?crossing.pts, "stop line crossed");
            if crossing.is_violation() {
                out.push(rule.violation(&crossing));
            }
        }
        for rule in &mut self.rules {
            if let Some(v) = rule.observe(track, class) {
                tracing::debug!(track = track.id, rule = %v.rule, kind = v.kind.as_str(), t = ?v.pts, "violation");
                out.push(v);
            }
        }
        out
    }

    pub fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        if let Some(r) = &mut self.red_light {
            r.retain(alive);
        }
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

    use crate::tracker::{Track, TrackPoint};

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
