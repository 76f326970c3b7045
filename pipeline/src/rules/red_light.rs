//! Red light: a vehicle's front crosses the stop line, in the direction of travel, while
//! the signal is red.

use std::collections::HashSet;
use std::time::Duration;

use vigil_models::BBox;

use crate::config::RedLightConfig;
use crate::signal::SignalState;
use crate::tracker::Track;

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
    pub signal: SignalState,
}

impl Crossing {
    pub fn is_violation(&self) -> bool {
        self.signal == SignalState::Red
    }
}

pub struct RedLightRule {
    origin: (f32, f32),
    /// Unit normal of the stop line, pointing the way traffic goes.
    normal: (f32, f32),
    direction: (f32, f32),
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
            origin: (ax, ay),
            normal: (nx / len, ny / len),
            direction: (dx / dlen, dy / dlen),
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

    /// Check the track's latest step; reports its first crossing only.
    pub fn observe(&mut self, track: &Track, signal: SignalState) -> Option<Crossing> {
        let n = track.points.len();
        if n < 2 || self.crossed.contains(&track.id) {
            return None;
        }
        let (prev, cur) = (&track.points[n - 2], &track.points[n - 1]);
        let (before, after) = (self.past_line(&prev.bbox), self.past_line(&cur.bbox));
        if before < 0.0 && after >= 0.0 {
            self.crossed.insert(track.id);
            let fraction = (-before / (after - before)) as f64;
            let pts =
                prev.pts + (cur.pts.saturating_sub(prev.pts)).mul_f64(fraction.clamp(0.0, 1.0));
            return Some(Crossing {
                track_id: track.id,
                frame: cur.frame,
                pts,
                before_frame: prev.frame,
                signal,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::TrackPoint;

    fn rule() -> RedLightRule {
        RedLightRule::new(&RedLightConfig {
            stop_line: [[100.0, 0.0], [100.0, 200.0]],
            direction: [1.0, 0.0],
        })
    }

    fn track(id: u64, xs: &[f32]) -> Track {
        let point = |i: usize, x: f32| TrackPoint {
            frame: i as u64,
            pts: Duration::from_millis(i as u64 * 200),
            bbox: BBox::new(x - 50.0, 10.0, x, 60.0),
            score: 0.9,
            class_id: 0,
        };
        Track::from_points(
            id,
            xs.iter().enumerate().map(|(i, &x)| point(i, x)).collect(),
        )
        .expect("points")
    }

    #[test]
    fn crossing_on_red_is_a_violation_and_fires_once() {
        let mut r = rule();
        let t = track(1, &[80.0, 95.0, 110.0]);
        let mut prefix = t.clone();
        prefix.points.truncate(2);
        assert_eq!(r.observe(&prefix, SignalState::Red), None);
        let c = r.observe(&t, SignalState::Red).expect("crossed");
        assert!(c.is_violation());
        assert_eq!((c.frame, c.before_frame), (2, 1));
        // Front at 95 then 110: the line (100) is reached a third of the way between frames.
        let expected = 0.2 + 0.2 * 5.0 / 15.0;
        assert!((c.pts.as_secs_f64() - expected).abs() < 1e-6, "{:?}", c.pts);
        let mut later = t.clone();
        later
            .points
            .extend(track(1, &[0.0, 0.0, 0.0, 130.0]).points.into_iter().skip(3));
        assert_eq!(r.observe(&later, SignalState::Red), None);
    }

    #[test]
    fn frames_missed_around_the_line_do_not_delay_the_crossing_time() {
        let mut r = rule();
        let mut t = track(1, &[90.0, 98.0, 0.0, 0.0, 122.0]);
        t.points.drain(2..4); // seen at frames 0, 1 and 4 only
        let mut prefix = t.clone();
        prefix.points.truncate(2);
        assert_eq!(r.observe(&prefix, SignalState::Red), None);
        let c = r.observe(&t, SignalState::Red).unwrap();
        assert_eq!(c.frame, 4);
        // 98 at 200 ms, 122 at 800 ms: 100 is reached at 250 ms.
        assert!((c.pts.as_secs_f64() - 0.25).abs() < 1e-6, "{:?}", c.pts);
    }

    #[test]
    fn crossing_on_green_or_amber_is_not_a_violation() {
        let mut r = rule();
        assert!(
            !r.observe(&track(1, &[90.0, 105.0]), SignalState::Green)
                .unwrap()
                .is_violation()
        );
        assert!(
            !r.observe(&track(2, &[90.0, 105.0]), SignalState::Amber)
                .unwrap()
                .is_violation()
        );
    }

    #[test]
    fn stopping_short_of_the_line_or_driving_against_the_direction_never_crosses() {
        let mut r = rule();
        assert_eq!(
            r.observe(&track(1, &[90.0, 99.0, 99.5, 99.9]), SignalState::Red),
            None
        );
        // Coming from the far side (against the direction of travel) is not a crossing.
        assert_eq!(
            r.observe(&track(2, &[200.0, 150.0, 90.0]), SignalState::Red),
            None
        );
    }

    #[test]
    fn the_front_follows_the_direction_of_travel() {
        let down = RedLightRule::new(&RedLightConfig {
            stop_line: [[0.0, 50.0], [200.0, 50.0]],
            direction: [0.0, 1.0],
        });
        let b = BBox::new(10.0, 0.0, 30.0, 45.0);
        assert_eq!(down.front(&b), (20.0, 45.0));
        assert!(down.past_line(&b) < 0.0);
        assert!(down.past_line(&BBox::new(10.0, 10.0, 30.0, 55.0)) > 0.0);
    }
}
