//! Red light: a vehicle's front crosses the stop line, in the direction of travel, while
//! the signal is red.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use vigil_core::ViolationKind;
use vigil_models::BBox;

use super::geometry::{Shape, inside};
use super::{Check, RuleConfig, TrackRule, Violation};
use crate::analysis::tracker::Track;
use crate::config::ConfigError;
use crate::signal::SignalState;

/// `[red_light]`: the stop line at a signalled junction.
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

impl RuleConfig for RedLightConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.line("stop_line", &self.stop_line)?;
        check.vector("direction", self.direction)?;
        check.within("red_dwell_seconds", self.red_dwell_seconds, 0.0..=60.0, "s")?;
        check.within(
            "confirm_fraction",
            self.confirm_fraction as f64,
            0.0..=1.0,
            "of the vehicle's length",
        )?;
        for (i, lane) in self.right_turn_on_red.iter().enumerate() {
            check.polygon(&format!("right_turn_on_red[{i}]"), lane)?;
        }
        Ok(())
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        let mut out = vec![("stop_line".into(), self.stop_line.to_vec())];
        out.extend(
            self.right_turn_on_red
                .iter()
                .enumerate()
                .map(|(i, lane)| (format!("right_turn_on_red[{i}]"), lane.clone())),
        );
        out
    }

    fn watched(&self) -> Vec<Shape> {
        // A right turn on red is judged where the front is first seen past the line,
        // which is near the line.
        vec![Shape::line(&self.stop_line)]
    }

    fn needs_signal(&self) -> bool {
        true
    }

    fn build(&self, _name: String) -> Box<dyn TrackRule> {
        Box::new(RedLightRule::new(self))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub track_id: u64,
    /// The first frame on which the vehicle is seen past the line.
    pub frame: u64,
    /// When the front reached the line: interpolated between the last point before it and
    /// the first after, so frames the detector missed do not make the crossing late.
    pub pts: Duration,
    /// The last point before the line.
    pub before_frame: u64,
    /// The signal when the front reached the line.
    pub signal: SignalState,
    /// How long the signal had been red then (evidence shows it).
    pub red_for: Option<Duration>,
    /// Why a crossing on red is allowed, if it is.
    pub exempt: Option<&'static str>,
    /// The red time the rule requires.
    pub red_dwell: Duration,
}

impl Crossing {
    pub fn is_violation(&self) -> bool {
        self.signal == SignalState::Red
            && self.exempt.is_none()
            && self.red_for.is_some_and(|d| d >= self.red_dwell)
    }
}

/// The signal's recent changes, to know its state and how long it had held at a moment
/// between frames (a crossing is confirmed a frame or two after it happened).
#[derive(Default)]
struct SignalLog {
    /// (time it took this state, state), oldest first.
    changes: VecDeque<(Duration, SignalState)>,
}

impl SignalLog {
    const KEEP: Duration = Duration::from_secs(120);

    fn record(&mut self, pts: Duration, state: SignalState) {
        if self.changes.back().is_none_or(|&(_, s)| s != state) {
            tracing::debug!(t = ?pts, signal = state.as_str(), "signal changed");
            self.changes.push_back((pts, state));
        }
        // Keep the change in force at `pts - KEEP`, drop older ones.
        while self.changes.len() > 1 && self.changes[1].0 + Self::KEEP < pts {
            self.changes.pop_front();
        }
    }

    /// The state at `t` and since when it had held.
    fn at(&self, t: Duration) -> Option<(SignalState, Duration)> {
        self.changes
            .iter()
            .rev()
            .find(|(since, _)| *since <= t)
            .map(|&(since, s)| (s, since))
    }
}

pub struct RedLightRule {
    config: RedLightConfig,
    origin: (f32, f32),
    /// Unit normal of the stop line, pointing the way traffic goes.
    normal: (f32, f32),
    direction: (f32, f32),
    red_dwell: Duration,
    confirm_fraction: f32,
    right_turn_on_red: Vec<Vec<[f32; 2]>>,
    signal: SignalLog,
    crossed: HashSet<u64>,
}

impl RedLightRule {
    pub fn new(config: &RedLightConfig) -> Self {
        let [[ax, ay], [bx, by]] = config.stop_line;
        let [dx, dy] = config.direction;
        let (mut nx, mut ny) = (-(by - ay), bx - ax);
        if nx * dx + ny * dy < 0.0 {
            (nx, ny) = (-nx, -ny);
        }
        let len = (nx * nx + ny * ny).sqrt();
        let dlen = (dx * dx + dy * dy).sqrt();
        Self {
            config: config.clone(),
            origin: (ax, ay),
            normal: (nx / len, ny / len),
            direction: (dx / dlen, dy / dlen),
            red_dwell: Duration::from_secs_f64(config.red_dwell_seconds),
            confirm_fraction: config.confirm_fraction.max(0.0),
            right_turn_on_red: config.right_turn_on_red.clone(),
            signal: SignalLog::default(),
            crossed: HashSet::new(),
        }
    }

    /// The point of the box furthest along the direction of travel: the vehicle's front.
    pub fn front(&self, b: &BBox) -> (f32, f32) {
        let (cx, cy) = b.center();
        let (dx, dy) = self.direction;
        let pick = |d: f32, lo: f32, hi: f32, mid: f32| {
            if d > 0.25 {
                hi
            } else if d < -0.25 {
                lo
            } else {
                mid
            }
        };
        (pick(dx, b.x1, b.x2, cx), pick(dy, b.y1, b.y2, cy))
    }

    /// Signed distance of the vehicle's front past the line (negative: still before it).
    pub fn past_line(&self, b: &BBox) -> f32 {
        let (px, py) = self.front(b);
        (px - self.origin.0) * self.normal.0 + (py - self.origin.1) * self.normal.1
    }

    /// The box's length along the direction of travel.
    fn length(&self, b: &BBox) -> f32 {
        b.width() * self.direction.0.abs() + b.height() * self.direction.1.abs()
    }

    /// The violation a crossing on red makes, with what the evidence shows of it.
    pub fn violation(&self, c: &Crossing) -> Violation {
        let ms = |d: Duration| d.as_millis() as u64;
        Violation {
            kind: ViolationKind::RedLight,
            track_id: c.track_id,
            pts: c.pts,
            frame: c.frame,
            before_frame: c.before_frame,
            rule: "red_light".into(),
            caption: "RED LIGHT".into(),
            facts: serde_json::json!({
                "signal_at_crossing": c.signal.as_str(),
                "red_for_ms": c.red_for.map(ms),
                "red_dwell_ms": ms(c.red_dwell),
                "geometry": {
                    "stop_line": self.config.stop_line,
                    "direction": self.config.direction,
                    "right_turn_on_red": self.config.right_turn_on_red,
                },
            }),
            signal: Some(c.signal),
        }
    }

    /// Check the track after its latest point; reports each track's first crossing once,
    /// when the front is far enough past the line to be sure.
    pub fn cross(&mut self, track: &Track) -> Option<Crossing> {
        if track.points.len() < 2 || self.crossed.contains(&track.id) {
            return None;
        }
        // Walk back over the points past the line (a few, on the hot path) to the last one
        // before it: that step is the crossing.
        let points = &track.points;
        let mut step = points.len();
        while step > 0 && self.past_line(&points[step - 1].bbox) >= 0.0 {
            step -= 1;
        }
        if step == 0 || step == points.len() {
            return None;
        }
        let cur = track.last();
        if self.past_line(&cur.bbox) < self.confirm_fraction * self.length(&cur.bbox) {
            return None;
        }
        self.crossed.insert(track.id);
        let (prev, first) = (&points[step - 1], &points[step]);
        let (before, after) = (self.past_line(&prev.bbox), self.past_line(&first.bbox));
        let fraction = (-before / (after - before)) as f64;
        let pts = prev.pts + (first.pts.saturating_sub(prev.pts)).mul_f64(fraction.clamp(0.0, 1.0));
        let (signal, since) = self.signal.at(pts).unwrap_or((SignalState::Unknown, pts));
        let (fx, fy) = self.front(&first.bbox);
        // Between two frames the vehicle may have waited, then started on green: the
        // interpolated moment assumes steady motion. Unless the signal was still red when
        // the vehicle was first seen past the line, the doubt goes to the driver.
        let red_when_seen_past = self
            .signal
            .at(first.pts)
            .is_some_and(|(s, _)| s == SignalState::Red);
        let exempt = if self
            .right_turn_on_red
            .iter()
            .any(|lane| inside(lane, (fx, fy)))
        {
            Some("right turn on red allowed in this lane")
        } else if signal == SignalState::Red && !red_when_seen_past {
            Some("the signal had changed from red by the first frame past the line")
        } else {
            None
        };
        Some(Crossing {
            track_id: track.id,
            frame: first.frame,
            pts,
            before_frame: prev.frame,
            signal,
            red_for: (signal == SignalState::Red).then(|| pts.saturating_sub(since)),
            exempt,
            red_dwell: self.red_dwell,
        })
    }
}

impl TrackRule for RedLightRule {
    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let crossing = self.cross(track)?;
        tracing::debug!(track = track.id, signal = crossing.signal.as_str(), red_for = ?crossing.red_for, exempt = ?crossing.exempt, t = ?crossing.pts, "stop line crossed");
        crossing.is_violation().then(|| self.violation(&crossing))
    }

    /// Record the signal seen on a frame; called on every analysed frame, before `observe`.
    fn signal(&mut self, pts: Duration, state: SignalState) {
        self.signal.record(pts, state);
    }

    fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.crossed.retain(|id| alive(*id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tracker::TrackPoint;

    fn config() -> RedLightConfig {
        RedLightConfig {
            stop_line: [[100.0, 0.0], [100.0, 200.0]],
            direction: [1.0, 0.0],
            red_dwell_seconds: 0.5,
            confirm_fraction: 0.15,
            right_turn_on_red: Vec::new(),
        }
    }

    /// The signal red from t = 0; tracks start at t = 2 s.
    fn rule() -> RedLightRule {
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Red);
        r
    }

    fn at(i: usize) -> Duration {
        Duration::from_millis(2000 + i as u64 * 200)
    }

    /// A 50 px long vehicle whose front is at each x in turn, one frame every 200 ms, in
    /// the band y 10..60.
    fn track(id: u64, xs: &[f32]) -> Track {
        track_in_band(id, xs, 10.0)
    }

    fn track_in_band(id: u64, xs: &[f32], y: f32) -> Track {
        let point = |i: usize, x: f32| TrackPoint {
            frame: i as u64,
            pts: at(i),
            bbox: BBox::new(x - 50.0, y, x, y + 50.0),
            score: 0.9,
            class_id: 0,
        };
        Track::from_points(
            id,
            xs.iter().enumerate().map(|(i, &x)| point(i, x)).collect(),
        )
        .expect("points")
    }

    fn prefix(t: &Track, n: usize) -> Track {
        let mut p = t.clone();
        p.points.truncate(n);
        p
    }

    #[test]
    fn crossing_on_red_is_a_violation_and_fires_once() {
        let mut r = rule();
        let t = track(1, &[80.0, 95.0, 110.0, 125.0]);
        assert_eq!(r.cross(&prefix(&t, 2)), None);
        let c = r.cross(&prefix(&t, 3)).expect("crossed");
        assert!(c.is_violation());
        assert_eq!((c.frame, c.before_frame), (2, 1));
        // Front at 95 then 110: the line (100) is reached a third of the way between frames.
        let expected = 2.2 + 0.2 * 5.0 / 15.0;
        assert!((c.pts.as_secs_f64() - expected).abs() < 1e-6, "{:?}", c.pts);
        assert_eq!(c.red_for, Some(c.pts));
        assert_eq!(r.cross(&t), None, "reported once");
    }

    #[test]
    fn a_crossing_counts_only_once_the_front_is_clearly_past_the_line() {
        let mut r = rule();
        // 3 px past a line the box is 50 px long: not yet (15 % is 7.5 px).
        let t = track(1, &[90.0, 103.0, 115.0]);
        assert_eq!(r.cross(&prefix(&t, 2)), None);
        let c = r.cross(&t).expect("confirmed one frame later");
        // Still timed and framed where the line was reached.
        assert_eq!((c.frame, c.before_frame), (1, 0));
        assert!((c.pts.as_secs_f64() - (2.0 + 0.2 * 10.0 / 13.0)).abs() < 1e-6);
    }

    #[test]
    fn a_vehicle_stopped_on_the_line_never_crosses() {
        let mut r = rule();
        // Its box jitters a pixel or two either side of the line while it waits.
        let xs = [90.0, 98.0, 100.5, 99.6, 101.2, 100.8, 99.9, 102.0, 101.0];
        let t = track(1, &xs);
        for n in 2..=xs.len() {
            assert_eq!(r.cross(&prefix(&t, n)), None, "after {n} points");
        }
    }

    #[test]
    fn frames_missed_around_the_line_do_not_delay_the_crossing_time() {
        let mut r = rule();
        let mut t = track(1, &[90.0, 98.0, 0.0, 0.0, 122.0]);
        t.points.drain(2..4); // seen at frames 0, 1 and 4 only: a flickering track
        assert_eq!(r.cross(&prefix(&t, 2)), None);
        let c = r.cross(&t).unwrap();
        assert_eq!(c.frame, 4);
        // 98 at 2.2 s, 122 at 2.8 s: 100 is reached at 2.25 s.
        assert!((c.pts.as_secs_f64() - 2.25).abs() < 1e-6, "{:?}", c.pts);
        assert!(c.is_violation());
    }

    #[test]
    fn crossing_on_green_amber_or_just_after_red_onset_is_not_a_violation() {
        let green = |state: SignalState| {
            let mut r = RedLightRule::new(&config());
            r.signal(Duration::ZERO, state);
            r.cross(&track(1, &[90.0, 110.0])).expect("crossed")
        };
        assert!(!green(SignalState::Green).is_violation());
        let amber = green(SignalState::Amber);
        assert!(!amber.is_violation());
        assert_eq!((amber.signal, amber.red_for), (SignalState::Amber, None));
        assert!(!green(SignalState::Unknown).is_violation());
        // Amber until 2.0 s, red from 2.0 s; the line is reached at 2.1 s: red for 0.1 s,
        // under the 0.5 s the rule asks for — the driver could not have stopped.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Amber);
        r.signal(at(0), SignalState::Red);
        let c = r.cross(&track(1, &[90.0, 110.0])).unwrap();
        assert_eq!(c.signal, SignalState::Red);
        assert_eq!(c.red_for, Some(Duration::from_millis(100)));
        assert!(!c.is_violation());
        // The same crossing 0.6 s into red is one.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Amber);
        r.signal(at(0) - Duration::from_millis(500), SignalState::Red);
        assert!(r.cross(&track(1, &[90.0, 110.0])).unwrap().is_violation());
    }

    #[test]
    fn a_vehicle_waiting_at_the_line_that_goes_on_green_is_not_a_violation() {
        // Front 2 px short of the line at 2.0 s (red); past it at 2.2 s, and the lamp
        // turned green at 2.15 s. Interpolation puts the crossing at 2.02 s, on red, but
        // the vehicle may well have waited for the green.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Red);
        r.signal(Duration::from_millis(2150), SignalState::Green);
        let c = r.cross(&track(1, &[98.0, 118.0])).unwrap();
        assert_eq!(c.signal, SignalState::Red);
        assert!(c.exempt.is_some());
        assert!(!c.is_violation());
    }

    #[test]
    fn the_signal_at_the_crossing_counts_not_the_one_when_it_is_confirmed() {
        // Reached the line at 2.1 s on amber; confirmed at 2.2 s, by when it is red.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Amber);
        r.signal(Duration::from_millis(2150), SignalState::Red);
        let c = r.cross(&track(1, &[90.0, 110.0])).unwrap();
        assert_eq!(c.signal, SignalState::Amber);
        assert!(!c.is_violation());
    }

    #[test]
    fn right_turn_on_red_is_allowed_only_in_its_lane() {
        let mut cfg = config();
        // The upper lane (y 0..80) may turn right on red.
        cfg.right_turn_on_red = vec![vec![[60.0, 0.0], [160.0, 0.0], [160.0, 80.0], [60.0, 80.0]]];
        let mut r = RedLightRule::new(&cfg);
        r.signal(Duration::ZERO, SignalState::Red);
        let turning = r.cross(&track_in_band(1, &[90.0, 110.0], 10.0)).unwrap();
        assert!(turning.exempt.is_some());
        assert!(!turning.is_violation());
        let straight = r.cross(&track_in_band(2, &[90.0, 110.0], 120.0)).unwrap();
        assert_eq!(straight.exempt, None);
        assert!(straight.is_violation());
    }

    #[test]
    fn a_vehicle_leaving_and_coming_back_is_judged_once_per_track() {
        let mut r = rule();
        // Crosses, backs up behind the line, crosses again: one crossing.
        let t = track(1, &[90.0, 110.0, 95.0, 80.0, 95.0, 115.0]);
        assert!(r.cross(&prefix(&t, 2)).is_some());
        for n in 3..=6 {
            assert_eq!(r.cross(&prefix(&t, n)), None);
        }
        // Out of view and back as a new track: judged again (the case store merges the
        // two by plate within its deduplication window).
        assert!(r.cross(&track(2, &[90.0, 110.0])).is_some());
    }

    #[test]
    fn stopping_short_of_the_line_or_driving_against_the_direction_never_crosses() {
        let mut r = rule();
        assert_eq!(r.cross(&track(1, &[90.0, 99.0, 99.5, 99.9])), None);
        // Coming from the far side (against the direction of travel) is not a crossing.
        assert_eq!(r.cross(&track(2, &[200.0, 150.0, 90.0])), None);
    }

    #[test]
    fn the_front_follows_the_direction_of_travel() {
        let down = RedLightRule::new(&RedLightConfig {
            stop_line: [[0.0, 50.0], [200.0, 50.0]],
            direction: [0.0, 1.0],
            ..config()
        });
        let b = BBox::new(10.0, 0.0, 30.0, 45.0);
        assert_eq!(down.front(&b), (20.0, 45.0));
        assert!(down.past_line(&b) < 0.0);
        assert!(down.past_line(&BBox::new(10.0, 10.0, 30.0, 55.0)) > 0.0);
    }
}
