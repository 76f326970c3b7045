//! Wrong way: a vehicle in a one-way lane moving against its direction, over a minimum
//! distance.

use serde::Deserialize;
use vigil_core::ViolationKind;

use super::geometry::{Point, Shape, dot, ground, inside, unit};
use super::{Check, MAX_COORDINATE, PerTrack, RuleConfig, TrackRule, Violation};
use crate::analysis::tracker::Track;
use crate::config::ConfigError;

/// `[[wrong_way]]`: a lane with one direction of travel: moving against it is driving the wrong way.
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

impl RuleConfig for WrongWayConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.polygon("lane", &self.lane)?;
        check.vector("direction", self.direction)?;
        check.positive(
            "min_distance",
            self.min_distance as f64,
            MAX_COORDINATE as f64,
            "px",
        )
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        vec![("lane".into(), self.lane.clone())]
    }

    fn watched(&self) -> Vec<Shape> {
        vec![Shape::area(&self.lane)]
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(WrongWayRule::new(name, self))
    }
}

struct State {
    /// The furthest the vehicle has been along the lawful direction while in the lane,
    /// and the frame it was there: moving back from it is moving against the traffic.
    furthest: f32,
    furthest_frame: u64,
}

pub struct WrongWayRule {
    name: String,
    config: WrongWayConfig,
    direction: Point,
    tracks: PerTrack<State>,
}

impl WrongWayRule {
    pub fn new(name: String, config: &WrongWayConfig) -> Self {
        Self {
            name,
            direction: unit(config.direction),
            config: config.clone(),
            tracks: PerTrack::default(),
        }
    }
}

impl TrackRule for WrongWayRule {
    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let p = track.last();
        let g = ground(&p.bbox);
        if self.tracks.is_reported(track.id) || !inside(&self.config.lane, g) {
            return None;
        }
        let along = dot(g, self.direction);
        let state = self.tracks.states.entry(track.id).or_insert(State {
            furthest: along,
            furthest_frame: p.frame,
        });
        if along > state.furthest {
            state.furthest = along;
            state.furthest_frame = p.frame;
        }
        let against = state.furthest - along;
        let before_frame = state.furthest_frame;
        if against < self.config.min_distance {
            return None;
        }
        self.tracks.report(track.id);
        Some(Violation {
            kind: ViolationKind::WrongWay,
            track_id: track.id,
            pts: p.pts,
            frame: p.frame,
            before_frame,
            rule: self.name.clone(),
            caption: "WRONG WAY".into(),
            facts: serde_json::json!({
                "moved_against_px": against,
                "geometry": {
                    "lane": self.config.lane,
                    "direction": self.config.direction,
                    "min_distance": self.config.min_distance,
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
    use super::*;
    use crate::rules::testing::{replay, track};

    /// A lane y 100..200 across the frame, traffic going right.
    fn rule() -> WrongWayRule {
        WrongWayRule::new(
            "wrong_way[0]".into(),
            &WrongWayConfig {
                lane: vec![[0.0, 100.0], [640.0, 100.0], [640.0, 200.0], [0.0, 200.0]],
                direction: [1.0, 0.0],
                min_distance: 60.0,
            },
        )
    }

    fn along(xs: &[f32], y: f32) -> Vec<(f32, f32)> {
        xs.iter().map(|&x| (x, y)).collect()
    }

    #[test]
    fn driving_against_the_lane_is_reported_once_past_the_distance() {
        let mut r = rule();
        let t = track(
            1,
            &along(&[600.0, 570.0, 545.0, 520.0, 480.0, 400.0], 150.0),
        );
        let v = replay(&t, |t| r.observe(t, "car"));
        assert_eq!(v.len(), 1, "{v:?}");
        // 600 → 520 is the first time it is 60 px or more against the traffic.
        assert_eq!(v[0].0, 4);
        assert_eq!((v[0].1.frame, v[0].1.before_frame), (3, 0));
        assert_eq!(v[0].1.kind, ViolationKind::WrongWay);
    }

    #[test]
    fn lawful_traffic_and_jitter_are_not() {
        let mut r = rule();
        let t = track(
            1,
            &along(&[100.0, 140.0, 135.0, 180.0, 170.0, 260.0], 150.0),
        );
        assert!(replay(&t, |t| r.observe(t, "car")).is_empty());
        // A vehicle stopped in the lane, its box jittering.
        let t = track(
            2,
            &along(&[300.0, 304.0, 297.0, 302.0, 296.0, 301.0], 150.0),
        );
        assert!(replay(&t, |t| r.observe(t, "car")).is_empty());
    }

    #[test]
    fn backing_up_a_little_is_not_but_a_long_reverse_is() {
        let mut r = rule();
        // Stops, reverses 40 px to let a bus turn, then goes on.
        let t = track(
            1,
            &along(&[200.0, 260.0, 240.0, 220.0, 280.0, 340.0], 150.0),
        );
        assert!(replay(&t, |t| r.observe(t, "car")).is_empty());
        let t = track(2, &along(&[300.0, 280.0, 250.0, 230.0], 150.0));
        assert_eq!(replay(&t, |t| r.observe(t, "car")).len(), 1);
    }

    #[test]
    fn movement_outside_the_lane_does_not_count() {
        let mut r = rule();
        // The opposite carriageway, below the lane: going left is lawful there.
        let t = track(1, &along(&[600.0, 500.0, 400.0, 300.0], 260.0));
        assert!(replay(&t, |t| r.observe(t, "car")).is_empty());
    }

    #[test]
    fn a_flickering_track_and_a_vehicle_that_comes_back() {
        let mut r = rule();
        let mut t = track(1, &along(&[600.0, 590.0, 0.0, 0.0, 520.0], 150.0));
        t.points.drain(2..4); // detected on frames 0, 1 and 4 only
        let v = replay(&t, |t| r.observe(t, "car"));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1.frame, 4);
        // The same vehicle found again as a new track is judged again (the case store
        // merges the two by plate).
        let t = track(2, &along(&[500.0, 420.0], 150.0));
        assert_eq!(replay(&t, |t| r.observe(t, "car")).len(), 1);
        r.retain(&|id| id == 2);
        assert!(r.tracks.is_reported(2) && !r.tracks.is_reported(1));
    }
}
