//! Speeding: the time a vehicle takes between two lines a surveyed distance apart.

use std::time::Duration;

use serde::Deserialize;
use vigil_core::ViolationKind;

use super::geometry::{Segment, Shape, crossing_time, ground};
use super::{Check, PerTrack, RuleConfig, TrackRule, Violation};
use crate::analysis::tracker::Track;
use crate::config::ConfigError;

/// `[[speed]]`: a speed trap, two lines across the road a measured distance apart on the ground.
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

impl RuleConfig for SpeedConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.line("line_a", &self.line_a)?;
        check.line("line_b", &self.line_b)?;
        let (a, b) = (self.line_a, self.line_b);
        if a == b || a == [b[1], b[0]] {
            return Err(check.invalid(
                "line_b",
                "is line_a: a speed is measured between two lines apart",
            ));
        }
        check.positive("distance_m", self.distance_m, MAX_DISTANCE_M, "m")?;
        check.positive("limit_kmh", self.limit_kmh, MAX_KMH, "km/h")?;
        for (class, limit) in &self.class_limits {
            check.positive(&format!("class_limits.{class}"), *limit, MAX_KMH, "km/h")?;
        }
        check.within("tolerance_kmh", self.tolerance_kmh, 0.0..=50.0, "km/h")
    }

    fn classes(&self) -> Vec<(String, Vec<String>)> {
        vec![(
            "class_limits".into(),
            self.class_limits.keys().cloned().collect(),
        )]
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        vec![
            ("line_a".into(), self.line_a.to_vec()),
            ("line_b".into(), self.line_b.to_vec()),
        ]
    }

    fn watched(&self) -> Vec<Shape> {
        vec![Shape::line(&self.line_a), Shape::line(&self.line_b)]
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(SpeedRule::new(name, self))
    }
}

/// The longest trap a camera can see, in metres.
const MAX_DISTANCE_M: f64 = 1_000.0;
/// No road vehicle's limit is higher (km/h).
const MAX_KMH: f64 = 300.0;

/// How far beyond a line's ends (share of its length) a crossing still counts.
const END_SLACK: f32 = 0.1;

#[derive(Default)]
struct Crossed {
    /// When the ground point crossed each line, and the frame after.
    a: Option<(Duration, u64)>,
    b: Option<(Duration, u64)>,
}

pub struct SpeedRule {
    name: String,
    config: SpeedConfig,
    line_a: Segment,
    line_b: Segment,
    tracks: PerTrack<Crossed>,
}

impl SpeedRule {
    pub fn new(name: String, config: &SpeedConfig) -> Self {
        Self {
            name,
            line_a: Segment::new(config.line_a[0], config.line_a[1]),
            line_b: Segment::new(config.line_b[0], config.line_b[1]),
            config: config.clone(),
            tracks: PerTrack::default(),
        }
    }

    pub fn limit(&self, class: &str) -> f64 {
        self.config
            .class_limits
            .get(class)
            .copied()
            .unwrap_or(self.config.limit_kmh)
    }
}

/// When the track's last step crossed the segment, if it did.
fn crossed(line: &Segment, track: &Track) -> Option<(Duration, u64)> {
    let n = track.points.len();
    if n < 2 {
        return None;
    }
    let (prev, next) = (&track.points[n - 2], &track.points[n - 1]);
    let d0 = line.beside(ground(&prev.bbox), END_SLACK)?;
    let d1 = line.beside(ground(&next.bbox), END_SLACK)?;
    if d0 == 0.0 || (d0 < 0.0) == (d1 < 0.0) && d1 != 0.0 {
        return None;
    }
    Some((crossing_time(prev, d0, next, d1), next.frame))
}

impl TrackRule for SpeedRule {
    fn observe(&mut self, track: &Track, class: &str) -> Option<Violation> {
        if self.tracks.is_reported(track.id) {
            return None;
        }
        let a = crossed(&self.line_a, track);
        let b = crossed(&self.line_b, track);
        let state = self.tracks.states.entry(track.id).or_default();
        // The first crossing of each line counts (either way round: the trap times both
        // directions of traffic).
        state.a = state.a.or(a);
        state.b = state.b.or(b);
        let ((ta, fa), (tb, fb)) = (state.a?, state.b?);
        self.tracks.report(track.id);
        let seconds = tb.abs_diff(ta).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let speed = self.config.distance_m / seconds * 3.6;
        let limit = self.limit(class);
        let excess = speed - self.config.tolerance_kmh - limit;
        let kind = ViolationKind::speeding(excess)?;
        let (first, last) = if ta <= tb { (fa, fb) } else { (fb, fa) };
        Some(Violation {
            kind,
            track_id: track.id,
            pts: ta.min(tb),
            frame: last,
            before_frame: first,
            rule: self.name.clone(),
            caption: format!("SPEEDING  {speed:.0} km/h, limit {limit:.0}"),
            facts: serde_json::json!({
                "speed_kmh": (speed * 10.0).round() / 10.0,
                "limit_kmh": limit,
                "tolerance_kmh": self.config.tolerance_kmh,
                "seconds_between_lines": seconds,
                "geometry": {
                    "line_a": self.config.line_a,
                    "line_b": self.config.line_b,
                    "distance_m": self.config.distance_m,
                },
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::rules::testing::{replay, track};

    /// Vertical lines at x = 100 and x = 500, 20 m apart on the road; limit 50 km/h.
    fn rule() -> SpeedRule {
        SpeedRule::new(
            "speed[0]".into(),
            &SpeedConfig {
                line_a: [[100.0, 0.0], [100.0, 360.0]],
                line_b: [[500.0, 0.0], [500.0, 360.0]],
                distance_m: 20.0,
                limit_kmh: 50.0,
                class_limits: BTreeMap::from([("lorry".to_string(), 40.0)]),
                tolerance_kmh: 3.0,
            },
        )
    }

    /// Ground points moving `px` per 200 ms frame along y = 200, from x = 40.
    fn moving(px: f32, frames: usize) -> Vec<(f32, f32)> {
        (0..frames).map(|i| (40.0 + px * i as f32, 200.0)).collect()
    }

    #[test]
    fn time_between_the_lines_gives_the_speed_and_its_band() {
        let mut r = rule();
        // 400 px (20 m) in 1.0 s = 72 km/h: 19 over after the 3 km/h tolerance.
        let v = replay(&track(1, &moving(80.0, 10)), |t| r.observe(t, "car"));
        assert_eq!(v.len(), 1, "{v:?}");
        let v = &v[0].1;
        assert_eq!(v.kind, ViolationKind::Speed10To20);
        assert_eq!(v.facts["speed_kmh"], 72.0);
        // A at x 100 (between 40 and 120: 0.15 s), B at 500 (between 440 and 520: 1.15 s).
        assert_eq!(v.pts, Duration::from_millis(150));
        assert_eq!((v.before_frame, v.frame), (1, 6));
    }

    #[test]
    fn under_the_limit_plus_tolerance_is_not_speeding() {
        let mut r = rule();
        // 400 px in 1.25 s = 57.6 km/h: 4.6 over after tolerance, under the 5 km/h band.
        let v = replay(&track(1, &moving(64.0, 12)), |t| r.observe(t, "car"));
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn class_limits_apply_and_both_directions_are_timed() {
        let mut r = rule();
        // 57.6 km/h is 14.6 over a lorry's 40 after tolerance.
        let v = replay(&track(1, &moving(64.0, 12)), |t| r.observe(t, "lorry"));
        assert_eq!(v[0].1.kind, ViolationKind::Speed10To20);
        // Right to left at 72 km/h.
        let path: Vec<(f32, f32)> = moving(80.0, 10)
            .into_iter()
            .map(|(x, y)| (600.0 - x, y))
            .collect();
        let v = replay(&track(2, &path), |t| r.observe(t, "car"));
        assert_eq!(v[0].1.facts["speed_kmh"], 72.0);
    }

    #[test]
    fn a_vehicle_that_crosses_only_one_line_is_never_judged() {
        let mut r = rule();
        // Turns off between the lines.
        let path = [
            (40.0, 200.0),
            (120.0, 200.0),
            (200.0, 200.0),
            (260.0, 400.0),
        ];
        assert!(replay(&track(1, &path), |t| r.observe(t, "car")).is_empty());
    }

    #[test]
    fn a_flickering_track_is_timed_across_its_gaps() {
        let mut r = rule();
        let mut t = track(1, &moving(80.0, 10));
        // Undetected on frames 1, 2 and 6: each crossing falls in a gap.
        t.points.remove(6);
        t.points.drain(1..3);
        let v = replay(&t, |t| r.observe(t, "car"));
        assert_eq!(v[0].1.facts["speed_kmh"], 72.0);
    }
}
