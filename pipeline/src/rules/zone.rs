//! Zones on the road: driving along a sidewalk; standing where stopping or parking is
//! forbidden for longer than allowed.

use std::time::Duration;

use serde::Deserialize;
use vigil_core::ViolationKind;

use super::geometry::{Point, Shape, distance, ground, inside};
use super::{Check, MAX_COORDINATE, MAX_SECONDS, PerTrack, RuleConfig, TrackRule, Violation};
use crate::analysis::tracker::Track;
use crate::config::ConfigError;

/// `[[sidewalk]]`: a vehicle moving along it is driving on the sidewalk.
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

impl RuleConfig for SidewalkConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.polygon("zone", &self.zone)?;
        check.positive(
            "min_distance",
            self.min_distance as f64,
            MAX_COORDINATE as f64,
            "px",
        )
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        vec![("zone".into(), self.zone.clone())]
    }

    fn watched(&self) -> Vec<Shape> {
        vec![Shape::area(&self.zone)]
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(SidewalkRule::new(name, self))
    }
}

/// `[[no_stopping]]`: a zone where stopping (or parking) is forbidden.
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

impl RuleConfig for NoStoppingConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        check.polygon("zone", &self.zone)?;
        check.positive("max_seconds", self.max_seconds, MAX_SECONDS, "s")?;
        check.positive(
            "still_fraction",
            self.still_fraction as f64,
            1.0,
            "of the box's width",
        )
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        vec![("zone".into(), self.zone.clone())]
    }

    fn watched(&self) -> Vec<Shape> {
        vec![Shape::area(&self.zone)]
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(NoStoppingRule::new(name, self))
    }
}

/// Where and when a vehicle entered (or came to a stand in) a zone.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    at: Point,
    pts: Duration,
    frame: u64,
}

pub struct SidewalkRule {
    name: String,
    config: SidewalkConfig,
    tracks: PerTrack<Anchor>,
}

impl SidewalkRule {
    pub fn new(name: String, config: &SidewalkConfig) -> Self {
        Self {
            name,
            config: config.clone(),
            tracks: PerTrack::default(),
        }
    }
}

impl TrackRule for SidewalkRule {
    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let p = track.last();
        let g = ground(&p.bbox);
        if !self.tracks.judging(track.id, inside(&self.config.zone, g)) {
            return None;
        }
        let entry = *self.tracks.states.entry(track.id).or_insert(Anchor {
            at: g,
            pts: p.pts,
            frame: p.frame,
        });
        let moved = distance(entry.at, g);
        if moved < self.config.min_distance {
            return None;
        }
        self.tracks.report(track.id);
        Some(Violation {
            kind: ViolationKind::SidewalkDriving,
            track_id: track.id,
            pts: entry.pts,
            frame: p.frame,
            before_frame: entry.frame,
            rule: self.name.clone(),
            caption: "DRIVING ON THE SIDEWALK".into(),
            facts: serde_json::json!({
                "moved_on_sidewalk_px": moved,
                "geometry": { "zone": self.config.zone, "min_distance": self.config.min_distance },
            }),
            signal: None,
        })
    }

    fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.tracks.retain(alive);
    }
}

pub struct NoStoppingRule {
    name: String,
    config: NoStoppingConfig,
    limit: Duration,
    /// Where each vehicle in the zone came to a stand, and when.
    tracks: PerTrack<Anchor>,
}

impl NoStoppingRule {
    pub fn new(name: String, config: &NoStoppingConfig) -> Self {
        Self {
            name,
            limit: Duration::from_secs_f64(config.max_seconds),
            config: config.clone(),
            tracks: PerTrack::default(),
        }
    }
}

impl TrackRule for NoStoppingRule {
    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let p = track.last();
        let g = ground(&p.bbox);
        if !self.tracks.judging(track.id, inside(&self.config.zone, g)) {
            return None;
        }
        let here = Anchor {
            at: g,
            pts: p.pts,
            frame: p.frame,
        };
        let still = self.config.still_fraction * p.bbox.width();
        let stand = self.tracks.states.entry(track.id).or_insert(here);
        // Moved on: a new stand (maybe) starts here.
        if distance(stand.at, g) > still {
            *stand = here;
            return None;
        }
        let stood = p.pts.saturating_sub(stand.pts);
        if stood < self.limit {
            return None;
        }
        let stand = *stand;
        self.tracks.report(track.id);
        let (kind, caption) = match self.config.kind {
            StopKind::NoStopping => (ViolationKind::NoStopping, "NO STOPPING"),
            StopKind::NoParking => (ViolationKind::NoParking, "NO PARKING"),
        };
        Some(Violation {
            kind,
            track_id: track.id,
            // The moment the limit ran out: the evidence clip is cut around the decision,
            // while the stand's start is kept in the facts.
            pts: p.pts,
            frame: p.frame,
            before_frame: stand.frame,
            rule: self.name.clone(),
            caption: format!("{caption}  standing {:.0} s", stood.as_secs_f64()),
            facts: serde_json::json!({
                "stopped_at_ms": stand.pts.as_millis() as u64,
                "stood_ms": stood.as_millis() as u64,
                "geometry": { "zone": self.config.zone, "max_seconds": self.config.max_seconds },
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

    const ZONE: [[f32; 2]; 4] = [[0.0, 300.0], [640.0, 300.0], [640.0, 360.0], [0.0, 360.0]];

    fn sidewalk() -> SidewalkRule {
        SidewalkRule::new(
            "sidewalk[0]".into(),
            &SidewalkConfig {
                zone: ZONE.to_vec(),
                min_distance: 40.0,
            },
        )
    }

    #[test]
    fn riding_along_the_sidewalk_is_reported_from_where_it_went_on() {
        let mut r = sidewalk();
        let path = [
            (100.0, 280.0),
            (130.0, 320.0),
            (150.0, 330.0),
            (175.0, 330.0),
            (200.0, 330.0),
        ];
        let v = replay(&track(1, &path), |t| r.observe(t, "motorbike"));
        assert_eq!(v.len(), 1, "{v:?}");
        // On at frame 1 (130, 320); 40 px from there first at frame 3.
        assert_eq!(v[0].0, 4);
        assert_eq!((v[0].1.before_frame, v[0].1.frame), (1, 3));
        assert_eq!(v[0].1.kind, ViolationKind::SidewalkDriving);
    }

    #[test]
    fn clipping_the_kerb_or_standing_on_it_is_not_driving_on_it() {
        let mut r = sidewalk();
        // Dips in for one frame while passing.
        let path = [
            (100.0, 290.0),
            (140.0, 305.0),
            (180.0, 290.0),
            (220.0, 290.0),
        ];
        assert!(replay(&track(1, &path), |t| r.observe(t, "car")).is_empty());
        // Parked on it, box jittering: a parking matter, not driving.
        let path = [
            (300.0, 330.0),
            (303.0, 331.0),
            (298.0, 329.0),
            (301.0, 330.0),
        ];
        assert!(replay(&track(2, &path), |t| r.observe(t, "car")).is_empty());
    }

    fn no_stopping(kind: StopKind) -> NoStoppingRule {
        NoStoppingRule::new(
            "no_stopping[0]".into(),
            &NoStoppingConfig {
                zone: ZONE.to_vec(),
                max_seconds: 1.0,
                kind,
                still_fraction: 0.25,
            },
        )
    }

    #[test]
    fn standing_past_the_limit_is_reported_once() {
        let mut r = no_stopping(StopKind::NoStopping);
        // Drives in, stops at x = 300 (jitter ±3 px, under a quarter of its 40 px box).
        let mut path = vec![(100.0, 330.0), (200.0, 330.0), (300.0, 330.0)];
        path.extend([303.0, 298.0, 301.0, 297.0, 302.0, 300.0, 299.0].map(|x| (x, 330.0)));
        let v = replay(&track(1, &path), |t| r.observe(t, "car"));
        assert_eq!(v.len(), 1, "{v:?}");
        // Stood from frame 2 (0.4 s); 1 s later is frame 7.
        assert_eq!(v[0].0, 8);
        let v = &v[0].1;
        assert_eq!(
            (v.before_frame, v.frame, v.kind),
            (2, 7, ViolationKind::NoStopping)
        );
        assert_eq!(v.facts["stopped_at_ms"], 400);
        let mut r = no_stopping(StopKind::NoParking);
        assert_eq!(
            replay(&track(1, &path), |t| r.observe(t, "car"))[0].1.kind,
            ViolationKind::NoParking
        );
    }

    #[test]
    fn creeping_in_a_queue_and_standing_outside_the_zone_are_not() {
        let mut r = no_stopping(StopKind::NoStopping);
        // Moves 15 px every frame: never still for a second.
        let path: Vec<(f32, f32)> = (0..12).map(|i| (100.0 + 15.0 * i as f32, 330.0)).collect();
        assert!(replay(&track(1, &path), |t| r.observe(t, "car")).is_empty());
        let path = vec![(300.0, 250.0); 12];
        assert!(replay(&track(2, &path), |t| r.observe(t, "car")).is_empty());
    }

    #[test]
    fn leaving_and_reentering_restarts_the_clock() {
        let mut r = no_stopping(StopKind::NoStopping);
        // 0.8 s in, a frame outside (the box lost to a passing bus), 0.8 s in again.
        let ys = [
            330.0, 330.0, 330.0, 330.0, 330.0, 250.0, 330.0, 330.0, 330.0, 330.0, 330.0,
        ];
        let path: Vec<(f32, f32)> = ys.iter().map(|&y| (300.0, y)).collect();
        assert!(replay(&track(1, &path), |t| r.observe(t, "car")).is_empty());
    }
}
