//! Wrong lane: crossing a solid line, or driving in a lane closed to the vehicle's class.

use std::time::Duration;

use serde::Deserialize;
use vigil_core::ViolationKind;

use super::geometry::{Segment, Shape, crossing_time, ground, inside};
use super::{
    Check, MAX_COORDINATE, MAX_POINTS, MAX_SECONDS, PerTrack, RuleConfig, TrackRule, Violation,
};
use crate::analysis::tracker::{Track, TrackPoint};
use crate::config::ConfigError;

/// The segments' share of length a ground point may lie beyond a polyline's end and still
/// be beside it: boxes at the end of a painted line are judged by its last segment.
const END_SLACK: f32 = 0.05;

/// `[[solid_line]]`: a solid line (or divider) that must not be crossed, as a polyline in pixels.
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

impl RuleConfig for SolidLineConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        if self.points.len() < 2 {
            return Err(check.invalid("points", "needs at least two points"));
        }
        if self.points.len() > MAX_POINTS {
            return Err(check.invalid("points", format!("more than {MAX_POINTS} points")));
        }
        check.points("points", &self.points)?;
        if self.points.windows(2).any(|w| w[0] == w[1]) {
            return Err(check.invalid("points", "two consecutive points are the same"));
        }
        check.positive("margin", self.margin as f64, MAX_COORDINATE as f64, "px")
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        vec![("points".into(), self.points.clone())]
    }

    fn watched(&self) -> Vec<Shape> {
        vec![Shape::line(&self.points)]
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(SolidLineRule::new(name, self))
    }
}

/// `[[restricted_lane]]`: a lane closed to some classes (e.g. a car-only lane); a vehicle of another class
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

impl RuleConfig for RestrictedLaneConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.polygon("lane", &self.lane)?;
        if self.allowed.is_empty() {
            return Err(check.invalid(
                "allowed",
                "names no class: list the classes allowed in the lane",
            ));
        }
        check.positive("min_seconds", self.min_seconds, MAX_SECONDS, "s")
    }

    fn classes(&self) -> Vec<(String, Vec<String>)> {
        vec![("allowed".into(), self.allowed.clone())]
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        vec![("lane".into(), self.lane.clone())]
    }

    fn watched(&self) -> Vec<Shape> {
        vec![Shape::area(&self.lane)]
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(RestrictedLaneRule::new(name, self))
    }
}

struct Side {
    /// -1 or 1: which side the vehicle was last clearly on.
    side: i8,
    /// The last point clearly on that side, and its distance from the line.
    point: TrackPoint,
    distance: f32,
}

pub struct SolidLineRule {
    name: String,
    config: SolidLineConfig,
    segments: Vec<Segment>,
    tracks: PerTrack<Side>,
}

impl SolidLineRule {
    pub fn new(name: String, config: &SolidLineConfig) -> Self {
        Self {
            name,
            segments: config
                .points
                .windows(2)
                .map(|w| Segment::new(w[0], w[1]))
                .collect(),
            config: config.clone(),
            tracks: PerTrack::default(),
        }
    }

    /// Signed distance from the nearest segment the point lies beside.
    fn distance(&self, p: (f32, f32)) -> Option<f32> {
        self.segments
            .iter()
            .filter_map(|s| s.beside(p, END_SLACK))
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
    }
}

impl TrackRule for SolidLineRule {
    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let p = track.last();
        let d = self.distance(ground(&p.bbox))?;
        // Inside the margin the side is unsure: it neither sets nor changes it.
        if d.abs() < self.config.margin {
            return None;
        }
        let side = if d < 0.0 { -1 } else { 1 };
        let now = Side {
            side,
            point: p.clone(),
            distance: d,
        };
        let before = self.tracks.states.insert(track.id, now)?;
        // Back across after the report is the same manoeuvre's other half.
        if before.side == side || !self.tracks.report(track.id) {
            return None;
        }
        Some(Violation {
            kind: ViolationKind::WrongLane,
            track_id: track.id,
            pts: crossing_time(&before.point, before.distance, p, d),
            frame: p.frame,
            before_frame: before.point.frame,
            rule: self.name.clone(),
            caption: "SOLID LINE CROSSED".into(),
            facts: serde_json::json!({
                "from_side": if before.distance < 0.0 { "left" } else { "right" },
                "geometry": { "solid_line": self.config.points, "margin": self.config.margin },
            }),
            signal: None,
        })
    }

    fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.tracks.retain(alive);
    }
}

/// Since when a vehicle of a class the lane is closed to has been in it.
#[derive(Clone, Copy)]
struct Entered {
    pts: Duration,
    frame: u64,
}

pub struct RestrictedLaneRule {
    name: String,
    config: RestrictedLaneConfig,
    min: Duration,
    tracks: PerTrack<Entered>,
}

impl RestrictedLaneRule {
    pub fn new(name: String, config: &RestrictedLaneConfig) -> Self {
        Self {
            name,
            min: Duration::from_secs_f64(config.min_seconds),
            config: config.clone(),
            tracks: PerTrack::default(),
        }
    }
}

impl TrackRule for RestrictedLaneRule {
    fn observe(&mut self, track: &Track, class: &str) -> Option<Violation> {
        let p = track.last();
        if self.config.allowed.iter().any(|c| c == class)
            || !self
                .tracks
                .judging(track.id, inside(&self.config.lane, ground(&p.bbox)))
        {
            return None;
        }
        let entered = *self.tracks.states.entry(track.id).or_insert(Entered {
            pts: p.pts,
            frame: p.frame,
        });
        let stayed = p.pts.saturating_sub(entered.pts);
        if stayed < self.min {
            return None;
        }
        self.tracks.report(track.id);
        Some(Violation {
            kind: ViolationKind::WrongLane,
            track_id: track.id,
            pts: entered.pts,
            frame: p.frame,
            before_frame: entered.frame,
            rule: self.name.clone(),
            caption: format!(
                "WRONG LANE  {class} in a lane for {}",
                self.config.allowed.join("/")
            ),
            facts: serde_json::json!({
                "class": class,
                "in_lane_ms": stayed.as_millis() as u64,
                "geometry": { "lane": self.config.lane, "allowed": self.config.allowed },
            }),
            signal: None,
        })
    }

    fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.tracks.retain(alive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::{replay, track};

    /// A solid line along y = 200 from x 0 to 600.
    fn solid() -> SolidLineRule {
        SolidLineRule::new(
            "solid_line[0]".into(),
            &SolidLineConfig {
                points: vec![[0.0, 200.0], [300.0, 200.0], [600.0, 200.0]],
                margin: 8.0,
            },
        )
    }

    #[test]
    fn crossing_a_solid_line_is_reported_once_with_an_interpolated_time() {
        let mut r = solid();
        // Changes lanes across the line, then comes back.
        let t = track(
            1,
            &[
                (100.0, 170.0),
                (140.0, 190.0),
                (180.0, 230.0),
                (220.0, 240.0),
                (260.0, 180.0),
            ],
        );
        let v = replay(&t, |t| r.observe(t, "car"));
        assert_eq!(v.len(), 1, "{v:?}");
        let v = &v[0].1;
        assert_eq!((v.frame, v.before_frame), (2, 1));
        // 10 px before the line at 0.2 s, 30 px past it at 0.4 s: on it at 0.25 s.
        assert_eq!(v.pts, Duration::from_millis(250));
        assert_eq!(v.kind, ViolationKind::WrongLane);
    }

    #[test]
    fn riding_along_the_paint_or_past_its_end_is_not_crossing() {
        let mut r = solid();
        // The ground point wanders ±6 px about the line: inside the margin.
        let t = track(
            1,
            &[
                (100.0, 194.0),
                (140.0, 205.0),
                (180.0, 196.0),
                (220.0, 206.0),
            ],
        );
        assert!(replay(&t, |t| r.observe(t, "car")).is_empty());
        // A lane change beyond the end of the solid part (x > 630) is allowed.
        let t = track(2, &[(640.0, 170.0), (650.0, 230.0)]);
        assert!(replay(&t, |t| r.observe(t, "car")).is_empty());
    }

    #[test]
    fn a_flickering_track_is_judged_across_its_gap() {
        let mut r = solid();
        let mut t = track(
            1,
            &[
                (100.0, 170.0),
                (120.0, 180.0),
                (0.0, 0.0),
                (0.0, 0.0),
                (200.0, 240.0),
            ],
        );
        t.points.drain(2..4);
        let v = replay(&t, |t| r.observe(t, "car"));
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].1.frame, v[0].1.before_frame), (4, 1));
    }

    fn car_lane() -> RestrictedLaneRule {
        RestrictedLaneRule::new(
            "restricted_lane[0]".into(),
            &RestrictedLaneConfig {
                lane: vec![[0.0, 100.0], [640.0, 100.0], [640.0, 200.0], [0.0, 200.0]],
                allowed: vec!["car".into(), "bus".into()],
                min_seconds: 1.0,
            },
        )
    }

    #[test]
    fn a_motorbike_staying_in_a_car_lane_is_reported_from_when_it_entered() {
        let mut r = car_lane();
        let path: Vec<(f32, f32)> = (0..9)
            .map(|i| (100.0 + 30.0 * i as f32, if i == 0 { 250.0 } else { 150.0 }))
            .collect();
        let v = replay(&track(1, &path), |t| r.observe(t, "motorbike"));
        assert_eq!(v.len(), 1, "{v:?}");
        // Entered at frame 1 (0.2 s); 1 s later is frame 6.
        assert_eq!(v[0].0, 7);
        assert_eq!(
            (v[0].1.before_frame, v[0].1.pts),
            (1, Duration::from_millis(200))
        );
        // A car in the same place is allowed.
        assert!(replay(&track(2, &path), |t| r.observe(t, "car")).is_empty());
    }

    #[test]
    fn cutting_through_the_lane_briefly_is_not_driving_in_it() {
        let mut r = car_lane();
        // In the lane for 0.6 s, out, back in for 0.6 s: never 1 s in one go.
        let ys = [
            150.0, 150.0, 150.0, 150.0, 250.0, 150.0, 150.0, 150.0, 150.0, 250.0,
        ];
        let path: Vec<(f32, f32)> = ys
            .iter()
            .enumerate()
            .map(|(i, &y)| (50.0 * i as f32, y))
            .collect();
        assert!(replay(&track(1, &path), |t| r.observe(t, "motorbike")).is_empty());
    }
}
