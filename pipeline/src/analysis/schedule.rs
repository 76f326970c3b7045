//! What of each frame the detector looks at: all of it, only the regions that changed
//! (motion gating), none (nothing moved), or none while the vehicles are followed between
//! detections away from the rules' geometry. The motion gate's reference picture and the
//! count of frames followed in a row are this part's own state.

use std::time::Duration;

use vigil_models::{BBox, Detector, Region};

use super::motion::MotionGate;
use super::tracker::{Track, Tracker};
use crate::frame::Frame;
use crate::rules::RuleSet;

/// Context around a changed region: the detector needs some of the scene around a
/// vehicle, and the thumbnail that found the change blurs its edges (what less context
/// lost: docs/performance/what-made-it-faster.md, item 3).
const REGION_MARGIN: u32 = 64;
/// Regions whose model runs cost more than this share of the whole frame's between them
/// (in input pixels, padded as the engine pads): the frame is looked at whole, for the
/// saving would be small.
const MAX_REGION_SHARE: f64 = 0.85;
/// How far (pixels) past its path's steady motion a vehicle is allowed to be when
/// judging whether it can reach a rule's geometry before the next detection.
const COAST_SLACK: f32 = 32.0;
/// Frames followed in a row at most before one is detected again.
pub(crate) const MAX_COASTED: u32 = 2;
/// A track seen once has no speed yet: it is given this much reach instead.
const COAST_UNKNOWN_REACH: f32 = 128.0;

/// What of a frame the detector looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Nothing moved: the frame is not analysed.
    Skip,
    Whole,
    /// Only these parts changed (apart from each other); elsewhere what was seen on the
    /// last analysed frame is still there.
    Regions(Vec<Region>),
    /// Things moved, but only away from every rule's geometry: the vehicles' paths are
    /// followed between detections, and only the signal is read.
    Coast,
}

/// What the rest of the analysis knows that the schedule asks about.
pub(crate) struct Scene<'a> {
    pub tracker: &'a Tracker,
    pub rules: &'a RuleSet,
    /// When, and which, frame was last detected in.
    pub last_pts: Option<Duration>,
    pub last_index: Option<u64>,
    /// A violation waits for a key frame, or a stand is being timed: every frame counts.
    pub needed: bool,
    pub analysis_fps: u32,
}

impl Scene<'_> {
    /// Tracks seen on the last detected frame.
    fn last_seen(&self) -> impl Iterator<Item = &Track> {
        self.last_index
            .into_iter()
            .flat_map(|i| self.tracker.current(i))
    }
}

/// One camera's detection schedule.
pub struct Schedule {
    /// `None`: motion gating off, every frame is looked at whole.
    gate: Option<MotionGate>,
    /// Frames followed in a row since the last detection.
    coasted: u32,
}

impl Schedule {
    pub fn new(motion_gating: bool) -> Self {
        Self {
            gate: motion_gating.then(MotionGate::default),
            coasted: 0,
        }
    }

    /// What of `frame` to detect in, by what the gate says changed since the last
    /// detected frame. Regions only where `detector` takes any input size. A frame the
    /// scene needs is never skipped: where nothing changed it is looked at whole.
    pub(crate) fn look(&mut self, frame: &Frame, scene: &Scene, detector: &Detector) -> Look {
        let look = self.decide(frame, scene, detector);
        match look {
            Look::Skip => {}
            Look::Coast => self.coasted += 1,
            Look::Whole | Look::Regions(_) => self.coasted = 0,
        }
        look
    }

    fn decide(&mut self, frame: &Frame, scene: &Scene, detector: &Detector) -> Look {
        let Some(gate) = &mut self.gate else {
            return Look::Whole;
        };
        let Some(changed) = gate.changed(&frame.image) else {
            if scene.needed {
                gate.rebase(&frame.image);
                return Look::Whole;
            }
            return Look::Skip;
        };
        let (w, h) = frame.image.dimensions();
        if scene.last_index.is_none() {
            return Look::Whole;
        }
        // What the detector will look at for each change: a model with a fixed input sees
        // at least its input's size of the frame around it.
        let mut regions: Vec<Region> = changed
            .into_iter()
            .map(|r| detector.region_view(r.grown(REGION_MARGIN, w, h), w, h))
            .collect();
        // A vehicle partly inside is taken in whole, or the detector would see it cut at
        // the region's edge; regions that then overlap become one; each step can reach
        // further.
        let seen: Vec<BBox> = scene.last_seen().map(|t| t.last().bbox).collect();
        loop {
            let before = regions.clone();
            for region in regions.iter_mut() {
                for b in &seen {
                    if region.overlaps(*b) && !region.contains(*b) {
                        *region = region.union(Region::around(*b).grown(REGION_MARGIN, w, h));
                    }
                }
            }
            regions = merge_overlapping(regions);
            if regions == before {
                break;
            }
        }
        if may_coast(self.coasted, frame.pts, &regions, scene) {
            gate.revert();
            return Look::Coast;
        }
        // By what the model runs cost: each region runs padded to the input the engine
        // takes, so two regions of half the frame each cost more than the frame.
        let cost: u64 = regions
            .iter()
            .map(|r| detector.input_pixels(w, h, r.width, r.height))
            .sum();
        let whole = detector.input_pixels(w, h, w, h);
        // Regions where they cost less than the frame, or, for a model that looks at a
        // region closer than at the frame, where they cost no more.
        let cheaper = detector.takes_regions() && cost as f64 <= MAX_REGION_SHARE * whole as f64;
        let closer = detector.looks_closer_in_regions() && cost <= whole;
        if cheaper || closer {
            Look::Regions(regions)
        } else {
            Look::Whole
        }
    }
}

/// Whether the frame at `pts`, changed in `regions`, may be followed rather than detected
/// in ("track between detections"): fewer than [`MAX_COASTED`] frames in a row were
/// followed, nothing waits for a key frame, no change touches a rule's geometry, and no
/// vehicle being followed can reach it before the next frame, where the same is asked
/// again. So every frame near a stop line, speed line, painted line or zone is still
/// detected, and a vehicle far from all of them at least every third frame.
pub(crate) fn may_coast(coasted: u32, pts: Duration, regions: &[Region], scene: &Scene) -> bool {
    if coasted >= MAX_COASTED || scene.needed {
        return false;
    }
    if regions.iter().any(|r| scene.rules.watches(&r.as_bbox())) {
        return false;
    }
    let Some(last) = scene.last_pts else {
        return false;
    };
    // Until the next frame: this one and one more interval.
    let interval = Duration::from_secs_f64(1.0 / scene.analysis_fps.max(1) as f64);
    let ahead = (pts.saturating_sub(last) + interval).as_secs_f32();
    !scene.tracker.live().iter().any(|t| {
        let p = t.last();
        let reach = match t.points.iter().rev().nth(1) {
            Some(q) if p.pts > q.pts => {
                let dt = (p.pts - q.pts).as_secs_f32();
                // The furthest any edge of the box moved, per second.
                let moved = [
                    p.bbox.x1 - q.bbox.x1,
                    p.bbox.y1 - q.bbox.y1,
                    p.bbox.x2 - q.bbox.x2,
                    p.bbox.y2 - q.bbox.y2,
                ]
                .into_iter()
                .fold(0.0f32, |m, d| m.max(d.abs()));
                moved / dt * ahead + COAST_SLACK
            }
            _ => COAST_UNKNOWN_REACH,
        };
        let b = p.bbox;
        let reachable = BBox::new(b.x1 - reach, b.y1 - reach, b.x2 + reach, b.y2 + reach);
        scene.rules.watches(&reachable)
    })
}

/// Join regions that overlap until none do.
fn merge_overlapping(mut regions: Vec<Region>) -> Vec<Region> {
    let mut i = 0;
    while i < regions.len() {
        let mut j = i + 1;
        let mut joined = false;
        while j < regions.len() {
            if regions[i].overlaps(regions[j].as_bbox()) {
                let other = regions.swap_remove(j);
                regions[i] = regions[i].union(other);
                joined = true;
            } else {
                j += 1;
            }
        }
        if !joined {
            i += 1;
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tracker::{Observation, TrackerSettings};
    use crate::config::CameraConfig;

    /// What the schedule is asked about a 640x360 camera at 5 analysed frames a second.
    struct Camera {
        tracker: Tracker,
        rules: RuleSet,
        last_pts: Option<Duration>,
        last_index: Option<u64>,
        coasted: u32,
    }

    impl Camera {
        fn may_coast(&self, pts: Duration, regions: &[Region]) -> bool {
            let scene = Scene {
                tracker: &self.tracker,
                rules: &self.rules,
                last_pts: self.last_pts,
                last_index: self.last_index,
                needed: false,
                analysis_fps: 5,
            };
            may_coast(self.coasted, pts, regions, &scene)
        }
    }

    /// A 640x360 camera whose rules are `rules` (TOML).
    fn camera(rules: &str) -> Camera {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cam.toml");
        let config = format!("id = \"cam\"\nname = \"test\"\nlocation = \"test\"\n{rules}");
        std::fs::write(&path, config).expect("write config");
        let camera = CameraConfig::load(&path).expect("config");
        Camera {
            tracker: Tracker::new(TrackerSettings::default()),
            rules: RuleSet::from_config(&camera),
            last_pts: None,
            last_index: None,
            coasted: 0,
        }
    }

    /// A junction with a stop line down x = 440, traffic left to right.
    fn junction() -> Camera {
        camera(
            r#"
[red_light]
stop_line = [[440.0, 8.0], [440.0, 352.0]]
direction = [1.0, 0.0]
[signal]
source = "schedule"
phases = [{ state = "green", seconds = 3 }, { state = "red", seconds = 5 }]
"#,
        )
    }

    /// Detect a vehicle whose box spans x1..x2 on analysis frame `i` (200 ms apart).
    fn detect(a: &mut Camera, i: u64, x1: f32, x2: f32) -> Duration {
        let pts = Duration::from_millis(i * 200);
        let seen = [Observation {
            bbox: BBox::new(x1, 100.0, x2, 200.0),
            score: 0.9,
            class_id: 2,
        }];
        a.tracker.update(i, pts, &seen);
        a.last_pts = Some(pts);
        a.last_index = Some(i);
        a.coasted = 0;
        pts
    }

    fn region(x: u32, width: u32) -> Region {
        Region {
            x,
            y: 80,
            width,
            height: 140,
        }
    }

    #[test]
    fn a_vehicle_far_from_the_stop_line_is_followed_between_detections_and_near_it_is_not() {
        let mut a = junction();
        // 20 px a frame, its front at 120 px then 140 px: far from the line at 440.
        detect(&mut a, 0, 20.0, 120.0);
        detect(&mut a, 1, 40.0, 140.0);
        let step = Duration::from_millis(200);
        let changed = [region(0, 210)];
        assert!(a.may_coast(2 * step, &changed));
        a.coasted = MAX_COASTED;
        assert!(
            !a.may_coast(2 * step, &changed),
            "after {MAX_COASTED} frames followed, one is detected"
        );
        a.coasted = 0;

        // A change that reaches the line (another vehicle) is detected whatever the tracks.
        assert!(!a.may_coast(2 * step, &[region(0, 210), region(400, 80)]));

        // Fast enough to reach the line before the next detection: detected.
        let mut fast = junction();
        detect(&mut fast, 0, 60.0, 220.0);
        detect(&mut fast, 1, 140.0, 300.0);
        assert_eq!(fast.tracker.live().len(), 1, "one vehicle, followed");
        assert!(!fast.may_coast(2 * step, &[region(80, 240)]));
        let mut slow = junction();
        detect(&mut slow, 0, 120.0, 280.0);
        detect(&mut slow, 1, 140.0, 300.0);
        assert!(slow.may_coast(2 * step, &[region(80, 240)]));

        // Its front 40 px from the line: detected.
        let mut near = junction();
        detect(&mut near, 0, 280.0, 380.0);
        detect(&mut near, 1, 300.0, 400.0);
        assert!(!near.may_coast(2 * step, &[region(230, 200)]));

        // Seen once, its speed unknown: detected unless well away from the line.
        let mut new = junction();
        detect(&mut new, 0, 250.0, 350.0);
        assert!(!new.may_coast(step, &[region(190, 200)]));
        let mut far = junction();
        detect(&mut far, 0, 0.0, 100.0);
        assert!(far.may_coast(step, &[region(0, 170)]));
    }

    #[test]
    fn a_camera_whose_rules_cover_the_road_detects_every_frame_that_moved() {
        let mut a = camera(
            r#"
[[wrong_way]]
lane = [[0.0, 0.0], [640.0, 0.0], [640.0, 360.0], [0.0, 360.0]]
direction = [1.0, 0.0]
"#,
        );
        detect(&mut a, 0, 20.0, 120.0);
        detect(&mut a, 1, 40.0, 140.0);
        assert!(!a.may_coast(Duration::from_millis(400), &[region(0, 210)]));
    }
}
