//! No helmet: a tracked motorbike whose rider's head, looked at on several frames, is
//! bare on most of the looks that found a head.
//!
//! The rule does not look at pixels itself: the analysis cuts the rider's region out of
//! the frame when [`TrackRule::wants_head`] asks, runs the head model on it only (a head
//! classifier-detector takes any bare head for a violation, so it must never see
//! pedestrians), and hands the rule what it found ([`TrackRule::head`]).

use std::time::Duration;

use serde::Deserialize;
use vigil_core::ViolationKind;
use vigil_models::BBox;

use super::geometry::{Shape, ground, inside};
use super::{Check, MAX_COORDINATE, MAX_SECONDS, PerTrack, RuleConfig, TrackRule, Violation};
use crate::analysis::tracker::{Track, TrackState};
use crate::config::ConfigError;

/// `[no_helmet]`: riders of these classes must wear a helmet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoHelmetConfig {
    /// The detector classes with riders who must wear one.
    #[serde(default = "default_classes")]
    pub classes: Vec<String>,
    /// Where riders are judged (the vehicle's ground point inside it); the whole picture
    /// when absent. A province leaves out the far part of the road, where heads are too
    /// small to judge.
    #[serde(default)]
    pub area: Option<Vec<[f32; 2]>>,
    /// The most looks at one rider: each costs a run of the head model.
    #[serde(default = "default_looks")]
    pub looks: u32,
    /// Looks that found a bare head, needed for a violation; it must also be more than
    /// the looks that found a helmet.
    #[serde(default = "default_bare_looks")]
    pub bare_looks: u32,
    /// The least time between two looks at one rider, so the looks are of different
    /// moments (another angle, other light) rather than one frame's error repeated.
    #[serde(default = "default_every")]
    pub every_seconds: f64,
}

fn default_classes() -> Vec<String> {
    vec!["motorbike".into()]
}

fn default_looks() -> u32 {
    6
}

fn default_bare_looks() -> u32 {
    3
}

fn default_every() -> f64 {
    0.4
}

/// The most looks a config may ask for at one rider.
const MAX_LOOKS: u32 = 50;

impl RuleConfig for NoHelmetConfig {
    fn validate(&self, check: &Check) -> Result<(), ConfigError> {
        if self.classes.is_empty() {
            return Err(check.invalid("classes", "name at least one class"));
        }
        if let Some(area) = &self.area {
            check.polygon("area", area)?;
        }
        check.within("looks", self.looks as f64, 1.0..=MAX_LOOKS as f64, "looks")?;
        check.within(
            "bare_looks",
            self.bare_looks as f64,
            1.0..=self.looks as f64,
            "looks (at most `looks`)",
        )?;
        check.within("every_seconds", self.every_seconds, 0.0..=MAX_SECONDS, "s")
    }

    fn points(&self) -> Vec<(String, Vec<[f32; 2]>)> {
        self.area
            .iter()
            .map(|a| ("area".to_string(), a.clone()))
            .collect()
    }

    /// Looks are taken on frames a rider is detected on, so riders are detected wherever
    /// they are judged rather than followed between detections.
    fn watched(&self) -> Vec<Shape> {
        let m = MAX_COORDINATE;
        let whole = vec![[0.0, 0.0], [m, 0.0], [m, m], [0.0, m]];
        vec![Shape::area(self.area.as_ref().unwrap_or(&whole))]
    }

    fn classes(&self) -> Vec<(String, Vec<String>)> {
        vec![("classes".into(), self.classes.clone())]
    }

    fn needs_heads(&self) -> bool {
        true
    }

    fn build(&self, name: String) -> Box<dyn TrackRule> {
        Box::new(NoHelmetRule::new(name, self))
    }
}

/// A head the model found in a rider's region, in the frame's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    pub bbox: BBox,
    /// Whether the model's likelier class for it is "without helmet".
    pub bare: bool,
    pub score: f32,
}

/// The part of the frame a rider's head can be in, for a two-wheeler's box: the box
/// widened by a quarter each side (a rider leans), from most of the box's height above it
/// (a box of the machine alone ends at the seat) to just past its middle (a box that
/// takes in the rider has the head in its upper part). Where the detector joins riders
/// to their motorbikes (`riders_in_box`), the head and the lean are in the box: only a
/// quarter of its height above it and a twentieth of its width each side are looked at,
/// for a region mostly empty makes a far rider's head too small for the head model. `None` for a vehicle cut by the picture's edge (its box
/// is not the vehicle's, so neither is the region) or a region too small to hold a head.
pub fn rider_region(vehicle: BBox, width: u32, height: u32, riders_in_box: bool) -> Option<BBox> {
    let edge = 2.0;
    if vehicle.x1 < edge
        || vehicle.y1 < edge
        || vehicle.x2 > width as f32 - edge
        || vehicle.y2 > height as f32 - edge
    {
        return None;
    }
    let (w, h) = (vehicle.width(), vehicle.height());
    // A box that takes in its rider holds the rider's lean too.
    let (above, side) = if riders_in_box {
        (0.25, 0.05)
    } else {
        (0.9, 0.25)
    };
    let region = BBox::new(
        vehicle.x1 - side * w,
        vehicle.y1 - above * h,
        vehicle.x2 + side * w,
        vehicle.y1 + 0.6 * h,
    )
    .clamp(width, height);
    (region.width() >= 8.0 && region.height() >= 8.0).then_some(region)
}

/// The rider's head among the heads found in the rider's region: of those above the middle
/// of the vehicle's box and within its width (a head beside it is a pedestrian's), the one
/// nearest the top of the box, where a rider's head is whether the box takes in the rider
/// or ends at the seat (a head further up is someone behind: another rider, a pedestrian).
pub fn rider_head(vehicle: BBox, heads: impl IntoIterator<Item = Head>) -> Option<Head> {
    let (w, h) = (vehicle.width(), vehicle.height());
    let top = (vehicle.center().0, vehicle.y1);
    let off = |head: &Head| {
        let (cx, cy) = head.bbox.center();
        ((cx - top.0) / w.max(1.0)).hypot((cy - top.1) / h.max(1.0))
    };
    heads
        .into_iter()
        .filter(|head| {
            let (cx, cy) = head.bbox.center();
            cx >= vehicle.x1 - 0.1 * w && cx <= vehicle.x2 + 0.1 * w && cy <= vehicle.y1 + 0.5 * h
        })
        .min_by(|a, b| off(a).total_cmp(&off(b)))
}

/// How far (in widths of the vehicle's box) a rider's head may sit from where it sat on
/// another look: a rider moves with the machine, a pedestrian's head behind it does not.
const SAME_PLACE: f32 = 0.2;

/// Where a head sits on a vehicle: from the box's ground point (bottom centre), in widths
/// of the box. The box's bottom and sides are the machine's; its top is the rider's head
/// on one frame and the seat on the next, as the detector hesitates.
pub fn place_on(vehicle: BBox, head: BBox) -> (f32, f32) {
    let w = vehicle.width().max(1.0);
    let ((hx, hy), (vx, _)) = (head.center(), vehicle.center());
    ((hx - vx) / w, (vehicle.y2 - hy) / w)
}

#[derive(Debug, Default)]
struct Looks {
    taken: u32,
    /// Where each bare head sat on the vehicle ([`place_on`]).
    bare: Vec<(f32, f32)>,
    helmeted: u32,
    last: Option<Duration>,
    /// The best bare look: score, frame, time, head.
    best: Option<(f32, u64, Duration, BBox)>,
    first_frame: Option<u64>,
}

pub struct NoHelmetRule {
    name: String,
    config: NoHelmetConfig,
    every: Duration,
    tracks: PerTrack<Looks>,
}

impl NoHelmetRule {
    pub fn new(name: String, config: &NoHelmetConfig) -> Self {
        Self {
            name,
            config: config.clone(),
            every: Duration::from_secs_f64(config.every_seconds),
            tracks: PerTrack::default(),
        }
    }

    fn applies(&self, track: &Track, class: &str) -> bool {
        track.state != TrackState::New
            && self.config.classes.iter().any(|c| c == class)
            && self
                .config
                .area
                .as_ref()
                .is_none_or(|a| inside(a, ground(&track.last().bbox)))
    }
}

impl TrackRule for NoHelmetRule {
    fn wants_head(&self, track: &Track, class: &str) -> bool {
        if self.tracks.is_reported(track.id) || !self.applies(track, class) {
            return false;
        }
        match self.tracks.states.get(&track.id) {
            None => true,
            Some(l) => {
                l.taken < self.config.looks
                    && l.last
                        .is_none_or(|t| track.last().pts.saturating_sub(t) >= self.every)
            }
        }
    }

    fn head(&mut self, track: &Track, head: Option<Head>) {
        if self.tracks.is_reported(track.id) {
            return;
        }
        let p = track.last();
        let looks = self.tracks.states.entry(track.id).or_default();
        looks.taken += 1;
        looks.last = Some(p.pts);
        looks.first_frame.get_or_insert(p.frame);
        match head {
            Some(h) if h.bare => {
                looks.bare.push(place_on(p.bbox, h.bbox));
                if looks.best.is_none_or(|(s, ..)| h.score > s) {
                    looks.best = Some((h.score, p.frame, p.pts, h.bbox));
                }
            }
            Some(_) => looks.helmeted += 1,
            None => {}
        }
    }

    fn observe(&mut self, track: &Track, _class: &str) -> Option<Violation> {
        let looks = self.tracks.states.get(&track.id)?;
        let bare = same_place(&looks.bare);
        if bare < self.config.bare_looks || bare <= looks.helmeted {
            return None;
        }
        let (score, _, seen_at, head) = looks.best?;
        let (taken, helmeted) = (looks.taken, looks.helmeted);
        let before_frame = looks.first_frame.unwrap_or(track.last().frame);
        self.tracks.report(track.id);
        let p = track.last();
        Some(Violation {
            kind: ViolationKind::NoHelmet,
            track_id: track.id,
            // Decided now, on this frame, which the key frames and the clip have; the best
            // look's moment is kept in the facts and its head crop in the evidence.
            pts: p.pts,
            frame: p.frame,
            before_frame,
            rule: self.name.clone(),
            caption: format!("NO HELMET  bare head on {bare} of {taken} looks"),
            facts: serde_json::json!({
                "looks": taken,
                "bare": bare,
                "helmeted": helmeted,
                "best_score": score,
                "best_at_ms": seen_at.as_millis() as u64,
                "head": [head.x1, head.y1, head.x2, head.y2],
                "geometry": { "classes": self.config.classes, "area": self.config.area },
            }),
            signal: None,
        })
    }

    fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.tracks.retain(alive);
    }
}

/// The most bare heads that sat in one place on the vehicle: heads found elsewhere on
/// other looks are another person's.
fn same_place(at: &[(f32, f32)]) -> u32 {
    at.iter()
        .map(|a| {
            at.iter()
                .filter(|b| (a.0 - b.0).abs() <= SAME_PLACE && (a.1 - b.1).abs() <= SAME_PLACE)
                .count() as u32
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::track;

    fn config() -> NoHelmetConfig {
        toml::from_str("").unwrap()
    }

    /// A look that found a head (bare or not) `dx` box-widths right of the box's centre,
    /// just above its top; `None` found none.
    type Look = Option<(bool, f32)>;

    fn head(bare: bool) -> Look {
        Some((bare, 0.0))
    }

    /// Feed the rule one look per point (where it wants one) and observe after each.
    fn run(rule: &mut NoHelmetRule, t: &Track, looks: &[Look]) -> Vec<Violation> {
        let mut found = Vec::new();
        let mut next = looks.iter();
        for n in 1..=t.points.len() {
            let mut p = t.clone();
            p.points.truncate(n);
            p.state = TrackState::Tracked;
            if rule.wants_head(&p, "motorbike")
                && let Some(look) = next.next()
            {
                let b = p.last().bbox;
                let head = look.map(|(bare, dx)| {
                    let cx = (b.x1 + b.x2) / 2.0 + dx * b.width();
                    Head {
                        bbox: BBox::new(cx - 5.0, b.y1 - 12.0, cx + 5.0, b.y1 - 2.0),
                        bare,
                        score: 0.6,
                    }
                });
                rule.head(&p, head);
            }
            found.extend(rule.observe(&p, "motorbike"));
        }
        found
    }

    fn path(n: usize) -> Track {
        track(
            1,
            &(0..n)
                .map(|i| (100.0 + i as f32 * 10.0, 200.0))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn a_majority_of_bare_looks_is_one_violation() {
        let mut rule = NoHelmetRule::new("no_helmet".into(), &config());
        // Points 200 ms apart, looks at least 400 ms apart: every other point.
        let v = run(
            &mut rule,
            &path(20),
            &[head(true), None, head(true), head(true)],
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].kind, ViolationKind::NoHelmet);
        assert_eq!(v[0].facts["bare"], 3);
        assert_eq!(v[0].facts["looks"], 4);
        // Decided on the frame of the third bare look (the 7th point: looks at 0, 2, 4, 6).
        assert_eq!(v[0].frame, 6);
    }

    #[test]
    fn helmets_outvoting_bare_heads_and_too_few_looks_are_no_violation() {
        let mut rule = NoHelmetRule::new("no_helmet".into(), &config());
        let looks = [
            head(false),
            head(true),
            head(false),
            head(true),
            head(false),
            head(true),
        ];
        assert!(run(&mut rule, &path(20), &looks).is_empty());
        let mut rule = NoHelmetRule::new("no_helmet".into(), &config());
        assert!(
            run(
                &mut rule,
                &path(20),
                &[head(true), head(true), None, None, None, None]
            )
            .is_empty()
        );
        // No more than `looks` looks, however long the track.
        let mut rule = NoHelmetRule::new("no_helmet".into(), &config());
        assert!(run(&mut rule, &path(60), &[None; 40]).is_empty());
        assert_eq!(rule.tracks.states[&1].taken, 6);
    }

    #[test]
    fn bare_heads_that_do_not_move_with_the_vehicle_are_not_its_riders() {
        // A pedestrian's head seen above the bike at one place on the box, then another,
        // then another (the bike moves on, the pedestrian does not): three bare heads, no
        // two in the same place on the bike.
        let mut rule = NoHelmetRule::new("no_helmet".into(), &config());
        let looks = [
            Some((true, -0.6)),
            Some((true, 0.0)),
            Some((true, 0.6)),
            None,
            None,
            None,
        ];
        assert!(run(&mut rule, &path(20), &looks).is_empty());
        // The same three, two of them where the rider sits and a third one elsewhere: not
        // yet three in one place.
        let mut rule = NoHelmetRule::new("no_helmet".into(), &config());
        let looks = [
            head(true),
            Some((true, 0.6)),
            Some((true, 0.1)),
            None,
            head(true),
        ];
        assert_eq!(run(&mut rule, &path(20), &looks).len(), 1);
    }

    #[test]
    fn other_classes_new_tracks_and_riders_outside_the_area_are_not_looked_at() {
        let rule = NoHelmetRule::new("no_helmet".into(), &config());
        let mut t = path(3);
        t.state = TrackState::Tracked;
        assert!(rule.wants_head(&t, "motorbike"));
        assert!(!rule.wants_head(&t, "bus"));
        t.state = TrackState::New;
        assert!(!rule.wants_head(&t, "motorbike"));
        let mut c = config();
        c.area = Some(vec![[0.0, 0.0], [50.0, 0.0], [50.0, 50.0]]);
        let rule = NoHelmetRule::new("no_helmet".into(), &c);
        t.state = TrackState::Tracked;
        assert!(!rule.wants_head(&t, "motorbike"));
    }

    #[test]
    fn the_rider_region_and_head_are_over_the_vehicle_not_beside_it() {
        let bike = BBox::new(100.0, 100.0, 200.0, 180.0);
        let r = rider_region(bike, 640, 360, false).unwrap();
        assert_eq!((r.x1, r.y1, r.x2, r.y2), (75.0, 28.0, 225.0, 148.0));
        // Clamped to the picture; nothing for a bike the picture's edge cuts.
        assert_eq!(
            rider_region(BBox::new(10.0, 10.0, 50.0, 50.0), 640, 360, false)
                .unwrap()
                .y1,
            0.0
        );
        assert!(rider_region(BBox::new(0.0, 100.0, 40.0, 140.0), 640, 360, false).is_none());
        assert!(rider_region(BBox::new(600.0, 300.0, 640.0, 360.0), 640, 360, false).is_none());
        let at = |x: f32, y: f32, score: f32| Head {
            bbox: BBox::new(x - 8.0, y - 8.0, x + 8.0, y + 8.0),
            bare: true,
            score,
        };
        // A pedestrian's head beside the bike, or another rider's further up, loses to the
        // rider's, however sure.
        let picked = rider_head(bike, [at(230.0, 80.0, 0.9), at(150.0, 95.0, 0.5)]).unwrap();
        assert_eq!(picked.score, 0.5);
        let picked = rider_head(bike, [at(140.0, 40.0, 0.9), at(150.0, 95.0, 0.5)]).unwrap();
        assert_eq!(picked.score, 0.5);
        // Where the head sits does not depend on whether the box took in the rider.
        let head = BBox::new(140.0, 60.0, 160.0, 80.0);
        assert_eq!(place_on(bike, head), (0.0, 1.1));
        assert_eq!(
            place_on(BBox::new(100.0, 55.0, 200.0, 180.0), head),
            (0.0, 1.1)
        );
        // A head low on the box (a pillion's knee, a plate) is not the rider's.
        assert!(rider_head(bike, [at(150.0, 160.0, 0.9)]).is_none());
    }

    #[test]
    fn absurd_configs_are_refused_by_key() {
        let check = Check {
            path: std::path::Path::new("cam.toml"),
            section: "no_helmet".into(),
        };
        for (text, key) in [
            ("looks = 0", "no_helmet.looks"),
            ("looks = 1000", "no_helmet.looks"),
            ("looks = 3\nbare_looks = 4", "no_helmet.bare_looks"),
            ("every_seconds = -1.0", "no_helmet.every_seconds"),
            ("every_seconds = nan", "no_helmet.every_seconds"),
            ("classes = []", "no_helmet.classes"),
            ("area = [[0.0, 0.0], [1.0, 1.0]]", "no_helmet.area"),
        ] {
            let c: NoHelmetConfig = toml::from_str(text).unwrap();
            let err = c.validate(&check).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(config().validate(&check).is_ok());
    }
}
