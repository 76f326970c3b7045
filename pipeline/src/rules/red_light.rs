//! Red light: a vehicle enters the junction, in the direction of travel, while the signal
//! is red. Reaching the stop line on red is not enough: a vehicle that stops with its
//! front on or over the paint and goes on green has not entered on red.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use vigil_core::ViolationKind;
use vigil_models::BBox;

use super::geometry::{Shape, inside};
use super::{Check, RuleConfig, TrackRule, Violation};
use crate::analysis::tracker::{Track, TrackPoint};
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
    /// travel) its front must get for the vehicle to have entered the junction. A vehicle
    /// that stops with its front on or just over the paint, its box jittering across the
    /// line, has not entered; it is judged by the signal when it does.
    #[serde(default = "default_entry_fraction")]
    pub entry_fraction: f32,
    /// Lanes where turning right on red is allowed (a sign says so), as polygons in
    /// pixels; a vehicle reaching the line inside one is not in violation.
    #[serde(default)]
    pub right_turn_on_red: Vec<Vec<[f32; 2]>>,
}

fn default_red_dwell() -> f64 {
    0.5
}

fn default_entry_fraction() -> f32 {
    0.5
}

impl RuleConfig for RedLightConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.line("stop_line", &self.stop_line)?;
        check.vector("direction", self.direction)?;
        check.within("red_dwell_seconds", self.red_dwell_seconds, 0.0..=60.0, "s")?;
        check.within(
            "entry_fraction",
            self.entry_fraction as f64,
            0.05..=2.0,
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
    /// When the vehicle entered the junction (its front `entry_fraction` of its length
    /// past the line), interpolated like `pts`.
    pub entered: Duration,
    /// The first frame on which the vehicle is seen inside the junction.
    pub entry_frame: u64,
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

    fn is_red(&self, t: Duration) -> bool {
        self.at(t).is_some_and(|(s, _)| s == SignalState::Red)
    }
}

/// Where a track's front last came to the line from behind it. Kept by the rule, not
/// read back from the track's history, so a vehicle that waits on the line for longer
/// than the history holds is still judged by when it reached it.
#[derive(Debug, Clone, Copy)]
struct Reached {
    pts: Duration,
    frame: u64,
    before_frame: u64,
    /// When it was first seen past the line.
    seen_past: Duration,
    front: (f32, f32),
    /// How fast it came to the line, in pixels a second.
    speed: f32,
}

/// The moment a track's front passed `depth` pixels past the line, between the last point
/// short of it and the first past it, if the track's latest point is past it. Returns the
/// interpolated time and both points.
fn passing(
    points: &[TrackPoint],
    depth: impl Fn(&TrackPoint) -> f32,
) -> Option<(Duration, Option<&TrackPoint>, &TrackPoint)> {
    let mut step = points.len();
    while step > 0 && depth(&points[step - 1]) >= 0.0 {
        step -= 1;
    }
    if step == points.len() {
        return None;
    }
    let first = &points[step];
    if step == 0 {
        // The point short of it is gone from the history: the latest possible moment.
        return Some((first.pts, None, first));
    }
    let prev = &points[step - 1];
    let (before, after) = (depth(prev), depth(first));
    let fraction = (-before / (after - before)) as f64;
    let pts = prev.pts + (first.pts.saturating_sub(prev.pts)).mul_f64(fraction.clamp(0.0, 1.0));
    Some((pts, Some(prev), first))
}

pub struct RedLightRule {
    config: RedLightConfig,
    origin: (f32, f32),
    /// Unit normal of the stop line, pointing the way traffic goes.
    normal: (f32, f32),
    direction: (f32, f32),
    red_dwell: Duration,
    entry_fraction: f32,
    right_turn_on_red: Vec<Vec<[f32; 2]>>,
    signal: SignalLog,
    reached: HashMap<u64, Reached>,
    /// Tracks first seen past the line, not yet seen behind it.
    unreached: HashSet<u64>,
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
            entry_fraction: config.entry_fraction.max(0.0),
            right_turn_on_red: config.right_turn_on_red.clone(),
            signal: SignalLog::default(),
            reached: HashMap::new(),
            unreached: HashSet::new(),
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

    /// How far the front is past the junction's entry (negative: not yet in).
    fn past_entry(&self, b: &BBox) -> f32 {
        self.past_line(b) - self.entry_fraction * self.length(b)
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
                "entered_junction_ms": ms(c.entered),
                "entry_frame": c.entry_frame,
                "geometry": {
                    "stop_line": self.config.stop_line,
                    "direction": self.config.direction,
                    "entry_fraction": self.config.entry_fraction,
                    "right_turn_on_red": self.config.right_turn_on_red,
                },
            }),
            signal: Some(c.signal),
        }
    }

    /// Follow the track after its latest point; reports each track's entry into the
    /// junction once, with when and on what signal it had reached the line.
    pub fn cross(&mut self, track: &Track) -> Option<Crossing> {
        if track.points.len() < 2 || self.crossed.contains(&track.id) {
            return None;
        }
        let points = &track.points;
        let cur = track.last();
        let past = self.past_line(&cur.bbox);
        if past < 0.0 {
            // Backing away from the line (further than a box jitters) undoes the arrival;
            // a front wavering on the paint does not.
            if -past > self.entry_fraction * self.length(&cur.bbox) {
                self.reached.remove(&track.id);
            }
            self.unreached.remove(&track.id);
            return None;
        }
        if !self.reached.contains_key(&track.id) {
            if self.unreached.contains(&track.id) {
                return None;
            }
            let (pts, prev, first) = passing(points, |p| self.past_line(&p.bbox))?;
            let Some(prev) = prev else {
                // First seen already past the line: it has not reached it in view (until
                // it is seen behind it).
                self.unreached.insert(track.id);
                return None;
            };
            let reached = Reached {
                pts,
                frame: first.frame,
                before_frame: prev.frame,
                seen_past: first.pts,
                front: self.front(&first.bbox),
                speed: self.approach_speed(points, first),
            };
            self.reached.insert(track.id, reached);
        }
        if self.past_entry(&cur.bbox) < 0.0 {
            return None;
        }
        let reached = self.reached.remove(&track.id)?;
        self.crossed.insert(track.id);
        let (entered, _, inside_first) = passing(points, |p| self.past_entry(&p.bbox))?;
        let (signal, since) = self
            .signal
            .at(reached.pts)
            .unwrap_or((SignalState::Unknown, reached.pts));
        // Between two frames a vehicle may have waited, then started on green:
        // interpolation assumes steady motion, and motion gating skips the frames of a
        // vehicle that waits. The doubt goes to the driver: the lamp must also be red on
        // the first frame it is seen past the line.
        let red_seen_past = self.signal.is_red(reached.seen_past);
        // A vehicle that kept its speed from the line into the junction is judged by when
        // it reached the line. One that took more than twice as long as its approach speed
        // needs may have stopped on or over the paint: it is judged by when it entered
        // (the offence is entering the junction on red), and the lamp must be red then and
        // on the first frame it is seen inside. Both are read from interpolated times and
        // the first frames past, so which frames were analysed does not change it.
        let depth = self.entry_fraction * self.length(&inside_first.bbox);
        let took = entered.saturating_sub(reached.pts).as_secs_f32();
        let kept_moving = reached.speed > 0.0 && took <= 2.0 * depth / reached.speed;
        let entered_on_red = self.signal.is_red(entered) && self.signal.is_red(inside_first.pts);
        let exempt = if self
            .right_turn_on_red
            .iter()
            .any(|lane| inside(lane, reached.front))
        {
            Some("right turn on red allowed in this lane")
        } else if signal == SignalState::Red && !red_seen_past {
            Some("the signal had changed from red by the first frame past the line")
        } else if signal == SignalState::Red && !kept_moving && !entered_on_red {
            Some("stopped on the line and entered the junction after the signal changed from red")
        } else {
            None
        };
        Some(Crossing {
            track_id: track.id,
            frame: reached.frame,
            pts: reached.pts,
            before_frame: reached.before_frame,
            signal,
            red_for: (signal == SignalState::Red).then(|| reached.pts.saturating_sub(since)),
            entered,
            entry_frame: inside_first.frame,
            exempt,
            red_dwell: self.red_dwell,
        })
    }

    /// How fast the front came to the line (pixels a second along the line's normal), over
    /// the last second of points up to the first one past it.
    fn approach_speed(&self, points: &[TrackPoint], first: &TrackPoint) -> f32 {
        let window = Duration::from_secs(1);
        let Some(end) = points.iter().position(|p| p.frame == first.frame) else {
            return 0.0;
        };
        let start = points[..end]
            .iter()
            .position(|p| first.pts.saturating_sub(p.pts) <= window)
            .unwrap_or(end.saturating_sub(1));
        let from = &points[start.min(end.saturating_sub(1))];
        let dt = first.pts.saturating_sub(from.pts).as_secs_f32();
        if dt <= 0.0 {
            return 0.0;
        }
        (self.past_line(&first.bbox) - self.past_line(&from.bbox)) / dt
    }
}

impl TrackRule for RedLightRule {
    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let crossing = self.cross(track)?;
        tracing::debug!(track = track.id, signal = crossing.signal.as_str(), red_for = ?crossing.red_for, exempt = ?crossing.exempt, t = ?crossing.pts, entered = ?crossing.entered, "stop line crossed");
        crossing.is_violation().then(|| self.violation(&crossing))
    }

    /// Record the signal seen on a frame; called on every analysed frame, before `observe`.
    fn signal(&mut self, pts: Duration, state: SignalState) {
        self.signal.record(pts, state);
    }

    fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.crossed.retain(|id| alive(*id));
        self.reached.retain(|id, _| alive(*id));
        self.unreached.retain(|id| alive(*id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RedLightConfig {
        RedLightConfig {
            stop_line: [[100.0, 0.0], [100.0, 200.0]],
            direction: [1.0, 0.0],
            red_dwell_seconds: 0.5,
            entry_fraction: 0.5,
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
    /// the band y 10..60. It has entered the junction once its front is 25 px past the
    /// line (x 125).
    fn track(id: u64, xs: &[f32]) -> Track {
        track_in_band(id, xs, 10.0)
    }

    fn track_in_band(id: u64, xs: &[f32], y: f32) -> Track {
        let frames: Vec<(usize, f32)> = xs.iter().copied().enumerate().collect();
        track_on_frames(id, &frames, y)
    }

    /// Like `track`, seen only on the frames given (as motion gating or a flickering
    /// detector leaves it).
    fn track_on_frames(id: u64, frames: &[(usize, f32)], y: f32) -> Track {
        let point = |i: usize, x: f32| TrackPoint {
            frame: i as u64,
            pts: at(i),
            bbox: BBox::new(x - 50.0, y, x, y + 50.0),
            score: 0.9,
            class_id: 0,
        };
        Track::from_points(id, frames.iter().map(|&(i, x)| point(i, x)).collect()).expect("points")
    }

    fn prefix(t: &Track, n: usize) -> Track {
        let mut p = t.clone();
        p.points.truncate(n);
        p
    }

    /// Feed the track to the rule one point at a time, as the analyser does; the first
    /// crossing reported.
    fn follow(r: &mut RedLightRule, t: &Track) -> Option<Crossing> {
        (2..=t.points.len()).find_map(|n| r.cross(&prefix(t, n)))
    }

    #[test]
    fn entering_on_red_is_a_violation_and_fires_once() {
        let mut r = rule();
        let t = track(1, &[80.0, 95.0, 110.0, 125.0, 140.0]);
        assert_eq!(r.cross(&prefix(&t, 2)), None);
        assert_eq!(r.cross(&prefix(&t, 3)), None, "on the paint, not yet in");
        let c = r.cross(&prefix(&t, 4)).expect("entered");
        assert!(c.is_violation());
        assert_eq!((c.frame, c.before_frame, c.entry_frame), (2, 1, 3));
        // Front at 95 then 110: the line (100) is reached a third of the way between frames.
        let expected = 2.2 + 0.2 * 5.0 / 15.0;
        assert!((c.pts.as_secs_f64() - expected).abs() < 1e-6, "{:?}", c.pts);
        assert_eq!(c.red_for, Some(c.pts));
        assert!(
            (c.entered.as_secs_f64() - 2.6).abs() < 1e-6,
            "{:?}",
            c.entered
        );
        assert_eq!(r.cross(&t), None, "reported once");
    }

    #[test]
    fn a_crossing_counts_only_once_the_vehicle_is_in_the_junction() {
        let mut r = rule();
        // 3 px, then 15 px past a line the box is 50 px long: not in yet (half is 25 px).
        let t = track(1, &[90.0, 103.0, 115.0, 130.0]);
        assert_eq!(r.cross(&prefix(&t, 2)), None);
        assert_eq!(r.cross(&prefix(&t, 3)), None);
        let c = r.cross(&t).expect("in one frame later");
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

    /// The signal red until 4.0 s, green from then.
    fn red_then_green() -> RedLightRule {
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Red);
        r.signal(at(10), SignalState::Green);
        r
    }

    #[test]
    fn a_vehicle_stopped_over_the_line_on_red_that_goes_on_green_is_not_a_violation() {
        // Reaches the line on red and stops with its front 12 px over the paint (a
        // quarter of its length), waits, and leaves when the lamp turns green at 4.0 s.
        let mut xs = vec![80.0, 95.0, 108.0, 112.0];
        xs.extend([112.5, 111.8, 112.2, 112.0, 111.6, 112.4, 112.0]); // frames 4..=10
        xs.extend([118.0, 130.0, 145.0]); // frames 11..=13, on green
        let every_frame = track(1, &xs);
        let c = follow(&mut red_then_green(), &every_frame).expect("judged when it enters");
        assert_eq!(c.signal, SignalState::Red, "it reached the line on red");
        assert!(c.entered >= at(10), "{:?}", c.entered);
        assert!(c.exempt.is_some());
        assert!(!c.is_violation());
        // Motion gating analyses none of the frames while it waits: the same decision.
        let gated = track_on_frames(
            1,
            &[
                (0, 80.0),
                (1, 95.0),
                (2, 108.0),
                (3, 112.0),
                (11, 118.0),
                (12, 130.0),
                (13, 145.0),
            ],
            10.0,
        );
        let c = follow(&mut red_then_green(), &gated).expect("judged when it enters");
        assert_eq!(c.signal, SignalState::Red);
        assert!(!c.is_violation(), "{c:?}");
        // Even when the frames before green are all gone (interpolation between 3 and 12
        // alone would put the entry on red).
        let sparse = track_on_frames(
            1,
            &[(0, 80.0), (1, 95.0), (3, 112.0), (12, 130.0), (13, 145.0)],
            10.0,
        );
        let c = follow(&mut red_then_green(), &sparse).expect("judged when it enters");
        assert!(c.entered < at(10), "interpolated on red: {:?}", c.entered);
        assert!(!c.is_violation(), "{c:?}");
    }

    #[test]
    fn a_vehicle_that_stops_over_the_line_then_goes_on_red_is_a_violation() {
        let mut xs = vec![80.0, 95.0, 108.0, 112.0, 112.3, 111.9, 112.0];
        xs.extend([118.0, 130.0, 145.0]); // frames 7..=9, still red
        let c = follow(&mut red_then_green(), &track(1, &xs)).expect("entered");
        assert!(c.is_violation(), "{c:?}");
        assert_eq!(c.entry_frame, 8);
        let gated = track_on_frames(
            1,
            &[(0, 80.0), (1, 95.0), (2, 108.0), (8, 130.0), (9, 145.0)],
            10.0,
        );
        assert!(
            follow(&mut red_then_green(), &gated)
                .unwrap()
                .is_violation()
        );
    }

    #[test]
    fn driving_over_the_line_on_red_is_a_violation_even_if_green_comes_before_it_is_in() {
        // 50 px a second, steadily: the line at 2.4 s on red, in the junction at 2.9 s,
        // the lamp green from 2.7 s. It did not stop: it ran the red.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Red);
        r.signal(Duration::from_millis(2700), SignalState::Green);
        let xs: Vec<f32> = (0..8).map(|i| 80.0 + 10.0 * i as f32).collect();
        let c = follow(&mut r, &track(1, &xs)).expect("entered");
        assert!(c.entered > Duration::from_millis(2700), "{:?}", c.entered);
        assert!(c.is_violation(), "{c:?}");
    }

    #[test]
    fn waiting_longer_than_the_track_keeps_points_still_judges_the_line_reached() {
        // The analyser keeps a bounded history: by the time the vehicle enters, the points
        // either side of the line are gone. The rule remembers when the line was reached.
        let mut xs = vec![80.0, 95.0, 108.0];
        xs.extend(std::iter::repeat_n(110.0, 40));
        xs.extend([120.0, 130.0]);
        let t = track(1, &xs);
        let mut r = rule();
        let mut found = None;
        for n in 2..=t.points.len() {
            let mut window = prefix(&t, n);
            let keep = window.points.len().saturating_sub(8);
            window.points.drain(..keep);
            if let Some(c) = r.cross(&window) {
                found = Some(c);
                break;
            }
        }
        let c = found.expect("judged");
        assert_eq!((c.frame, c.before_frame), (2, 1));
        assert!(c.is_violation());
    }

    #[test]
    fn frames_missed_around_the_line_do_not_delay_the_crossing_time() {
        let mut r = rule();
        // Seen at frames 0, 1 and 4 only: a flickering track.
        let t = track_on_frames(1, &[(0, 90.0), (1, 98.0), (4, 128.0)], 10.0);
        assert_eq!(r.cross(&prefix(&t, 2)), None);
        let c = r.cross(&t).unwrap();
        assert_eq!(c.frame, 4);
        // 98 at 2.2 s, 128 at 2.8 s: 100 is reached at 2.24 s.
        assert!((c.pts.as_secs_f64() - 2.24).abs() < 1e-6, "{:?}", c.pts);
        assert!(c.is_violation());
    }

    #[test]
    fn crossing_on_green_amber_or_just_after_red_onset_is_not_a_violation() {
        let runner = || track(1, &[90.0, 110.0, 130.0]);
        let green = |state: SignalState| {
            let mut r = RedLightRule::new(&config());
            r.signal(Duration::ZERO, state);
            follow(&mut r, &runner()).expect("crossed")
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
        let c = follow(&mut r, &runner()).unwrap();
        assert_eq!(c.signal, SignalState::Red);
        assert_eq!(c.red_for, Some(Duration::from_millis(100)));
        assert!(!c.is_violation());
        // The same crossing 0.6 s into red is one.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Amber);
        r.signal(at(0) - Duration::from_millis(500), SignalState::Red);
        assert!(follow(&mut r, &runner()).unwrap().is_violation());
    }

    #[test]
    fn a_vehicle_waiting_at_the_line_that_goes_on_green_is_not_a_violation() {
        // Front 2 px short of the line at 2.0 s (red); past it at 2.2 s, and the lamp
        // turned green at 2.15 s. Interpolation puts the line at 2.02 s, on red, but the
        // vehicle may well have waited for the green: it enters the junction on green.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Red);
        r.signal(Duration::from_millis(2150), SignalState::Green);
        let c = follow(&mut r, &track(1, &[98.0, 118.0, 138.0])).unwrap();
        assert_eq!(c.signal, SignalState::Red);
        assert!(c.exempt.is_some());
        assert!(!c.is_violation());
    }

    #[test]
    fn the_signal_at_the_crossing_counts_not_the_one_when_it_is_confirmed() {
        // Reached the line at 2.1 s on amber; in the junction at 2.3 s, by when it is red.
        let mut r = RedLightRule::new(&config());
        r.signal(Duration::ZERO, SignalState::Amber);
        r.signal(Duration::from_millis(2150), SignalState::Red);
        let c = follow(&mut r, &track(1, &[90.0, 110.0, 130.0])).unwrap();
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
        let turning = follow(&mut r, &track_in_band(1, &[90.0, 110.0, 130.0], 10.0)).unwrap();
        assert!(turning.exempt.is_some());
        assert!(!turning.is_violation());
        let straight = follow(&mut r, &track_in_band(2, &[90.0, 110.0, 130.0], 120.0)).unwrap();
        assert_eq!(straight.exempt, None);
        assert!(straight.is_violation());
    }

    #[test]
    fn a_vehicle_leaving_and_coming_back_is_judged_once_per_track() {
        let mut r = rule();
        // Enters, backs up behind the line, enters again: one crossing.
        let t = track(1, &[90.0, 110.0, 130.0, 95.0, 80.0, 95.0, 115.0, 135.0]);
        assert!(follow(&mut r, &prefix(&t, 3)).is_some());
        for n in 4..=t.points.len() {
            assert_eq!(r.cross(&prefix(&t, n)), None);
        }
        // Out of view and back as a new track: judged again (the case store merges the
        // two by plate within its deduplication window).
        assert!(follow(&mut r, &track(2, &[90.0, 110.0, 130.0])).is_some());
    }

    #[test]
    fn stopping_short_of_the_line_or_driving_against_the_direction_never_crosses() {
        let mut r = rule();
        assert_eq!(follow(&mut r, &track(1, &[90.0, 99.0, 99.5, 99.9])), None);
        // Coming from the far side (against the direction of travel) is not a crossing.
        assert_eq!(
            follow(&mut r, &track(2, &[200.0, 150.0, 110.0, 130.0, 160.0])),
            None
        );
        // Unless it then comes back behind the line and goes through it.
        assert!(follow(&mut r, &track(3, &[200.0, 150.0, 90.0, 110.0, 130.0])).is_some());
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
