//! Scoring the pipeline against scripted scenarios with ground truth: per-rule precision
//! and recall, and the exact plate-read rate on clear and degraded plates.
//!
//! A scenario is a video, the camera config it was made for, and a truth file listing
//! every vehicle: its box on every frame, its plate, and the violations it commits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_models::BBox;

use vigil_core::SystemClock;

use crate::analysis::{AnalysisError, Analyzer, AnalyzerSettings, Finding, Look, Models};
use crate::config::{CameraConfig, ConfigError};
use crate::source::{FileSource, FrameSource, SourceError};

/// Least overlap of a finding's vehicle box with a true vehicle's box to count as it.
const MATCH_IOU: f32 = 0.3;

#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    /// Video file, relative to the truth file.
    pub video: String,
    /// Camera config, relative to the truth file.
    pub camera: String,
    pub fps: f64,
    /// What the scenario exercises (day, low light, motion blur, small plates, ...).
    #[serde(default)]
    pub conditions: Vec<String>,
    pub vehicles: Vec<TruthVehicle>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TruthVehicle {
    pub id: u32,
    pub plate: String,
    /// Violation codes (`red_light`, `speed_20_35`, ...) this vehicle commits.
    pub violations: Vec<String>,
    /// Whether its plate is clear or degraded (night, blur, small, dirty).
    pub plate_quality: PlateQuality,
    /// Its box on every video frame (x1, y1, x2, y2), `None` while out of view.
    pub boxes: Vec<Option<[f32; 4]>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateQuality {
    Clear,
    Degraded,
}

/// What the pipeline decided, as scoring needs it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub violation: String,
    /// When the vehicle was on the "on" key frame, and its box there.
    pub pts: Duration,
    pub bbox: BBox,
    pub plate: Option<String>,
    /// How sure the reader was of the plate (0 without one).
    pub plate_confidence: f32,
}

impl Observed {
    pub fn from_finding(f: &Finding) -> Self {
        let on = f
            .key_frames
            .iter()
            .find(|k| k.label == "on")
            .or(f.key_frames.first());
        Self {
            violation: f.violation.kind.as_str().to_string(),
            pts: on.map(|k| k.frame.pts).unwrap_or(f.violation.pts),
            bbox: on.map(|k| k.bbox).unwrap_or(BBox::new(0.0, 0.0, 0.0, 0.0)),
            plate: f.plate.as_ref().map(|p| p.plate.to_string()),
            plate_confidence: f.plate.as_ref().map_or(0.0, |_| f.plate_confidence),
        }
    }
}

/// Counts for one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub true_positives: u32,
    pub false_positives: u32,
    pub false_negatives: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlateTally {
    pub clear: u32,
    pub clear_exact: u32,
    pub degraded: u32,
    pub degraded_exact: u32,
    /// Reads on true finds that named a plate, but not the vehicle's.
    pub wrong: u32,
    /// The highest confidence of a wrong read (0 without one).
    pub wrong_max_confidence: f32,
    /// Cases (any find, true or not) carrying the plate of a vehicle in the scene other
    /// than the one they are about: a ticket to the wrong owner.
    pub other_vehicles: u32,
    /// The confidence of each scored read against whether it was right.
    pub reliability: crate::plates::score::Reliability,
}

/// How the tracker kept identities, from every analysed frame: each followed track
/// matched one-to-one to the true vehicle it overlaps most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IdentityTally {
    /// Frame-vehicle pairs where a track was on the vehicle.
    pub matched: u32,
    /// A vehicle's track changed from one id to another (CLEAR-MOT's IDSW): a split.
    pub switches: u32,
    /// A track id moved from one vehicle to another: an identity that jumped, which is
    /// how a plate or a violation reaches the wrong vehicle.
    pub jumps: u32,
}

/// The tracks followed on one analysed frame, with their boxes.
#[derive(Debug, Clone)]
pub struct FrameTracks {
    pub pts: Duration,
    pub tracks: Vec<(u64, BBox)>,
}

/// One scenario's outcome.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub rules: BTreeMap<String, Tally>,
    pub plates: PlateTally,
    /// What went wrong, one line each, for the table's notes.
    pub misses: Vec<String>,
    /// How the detector looked at the analysed frames.
    pub looks: LookTally,
    pub identity: IdentityTally,
}

/// Frames the detector saw whole, saw only in their changed region, skipped (motion
/// gating), or followed between detections away from the rules' geometry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LookTally {
    pub whole: u32,
    pub region: u32,
    pub skipped: u32,
    pub coasted: u32,
}

impl Score {
    pub fn add(&mut self, other: &Score) {
        for (rule, t) in &other.rules {
            let mine = self.rules.entry(rule.clone()).or_default();
            mine.true_positives += t.true_positives;
            mine.false_positives += t.false_positives;
            mine.false_negatives += t.false_negatives;
        }
        self.plates.clear += other.plates.clear;
        self.plates.clear_exact += other.plates.clear_exact;
        self.plates.degraded += other.plates.degraded;
        self.plates.degraded_exact += other.plates.degraded_exact;
        self.plates.wrong += other.plates.wrong;
        self.plates.wrong_max_confidence = self
            .plates
            .wrong_max_confidence
            .max(other.plates.wrong_max_confidence);
        self.plates.other_vehicles += other.plates.other_vehicles;
        self.plates.reliability.merge(&other.plates.reliability);
        self.identity.matched += other.identity.matched;
        self.identity.switches += other.identity.switches;
        self.identity.jumps += other.identity.jumps;
        self.misses.extend(other.misses.iter().cloned());
        self.looks.whole += other.looks.whole;
        self.looks.region += other.looks.region;
        self.looks.skipped += other.looks.skipped;
        self.looks.coasted += other.looks.coasted;
    }

    /// The report `vigil eval --json` prints.
    pub fn report(&self) -> Report {
        let ratio = |n: u32, d: u32| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        Report {
            rules: self
                .rules
                .iter()
                .map(|(rule, t)| {
                    (
                        rule.clone(),
                        RuleReport {
                            precision: ratio(
                                t.true_positives,
                                t.true_positives + t.false_positives,
                            ),
                            recall: ratio(t.true_positives, t.true_positives + t.false_negatives),
                            support: t.true_positives + t.false_negatives,
                        },
                    )
                })
                .collect(),
            plates: PlateReport {
                clear: ratio(self.plates.clear_exact, self.plates.clear),
                degraded: ratio(self.plates.degraded_exact, self.plates.degraded),
                n: self.plates.clear + self.plates.degraded,
                wrong: self.plates.wrong,
                wrong_max_confidence: self.plates.wrong_max_confidence,
                other_vehicles: self.plates.other_vehicles,
                reliability: self.plates.reliability.clone(),
            },
            frames: self.looks,
            identity: self.identity,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub rules: BTreeMap<String, RuleReport>,
    pub plates: PlateReport,
    pub frames: LookTally,
    pub identity: IdentityTally,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub precision: f64,
    pub recall: f64,
    /// True violations of this rule in the suite.
    pub support: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlateReport {
    /// Share of detected violators whose plate was read exactly, by plate quality.
    pub clear: f64,
    pub degraded: f64,
    pub n: u32,
    /// Wrong reads (a plate, not the vehicle's) and the highest confidence among them.
    pub wrong: u32,
    pub wrong_max_confidence: f32,
    /// Cases carrying another vehicle's plate: the target is 0.
    pub other_vehicles: u32,
    /// Scored reads by confidence, and how many of each were right.
    pub reliability: crate::plates::score::Reliability,
}

fn iou(a: &BBox, b: &[f32; 4]) -> f32 {
    a.iou(&BBox::new(b[0], b[1], b[2], b[3]))
}

/// Score what the pipeline found in one scenario against its truth.
pub fn score(name: &str, truth: &Truth, found: &[Observed]) -> Score {
    let mut out = Score::default();
    for v in &truth.vehicles {
        for rule in &v.violations {
            out.rules.entry(rule.clone()).or_default();
        }
    }
    // (vehicle index, rule) pairs already found; vehicles whose plate was scored.
    let mut hit: Vec<(usize, String)> = Vec::new();
    let mut plate_scored: Vec<usize> = Vec::new();
    for o in found {
        let frame = (o.pts.as_secs_f64() * truth.fps).round() as usize;
        let owner = |plate: &str| truth.vehicles.iter().position(|v| v.plate == plate);
        let best = truth
            .vehicles
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let b = v.boxes.get(frame).copied().flatten()?;
                Some((i, iou(&o.bbox, &b)))
            })
            .filter(|&(_, overlap)| overlap >= MATCH_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i);
        if let Some(j) = o.plate.as_deref().and_then(owner)
            && best != Some(j)
        {
            out.plates.other_vehicles += 1;
            out.misses.push(format!(
                "{name}: {} at {:.2} s carries vehicle {}'s plate {} (confidence {:.2})",
                o.violation,
                o.pts.as_secs_f64(),
                truth.vehicles[j].id,
                truth.vehicles[j].plate,
                o.plate_confidence
            ));
        }
        let tally = out.rules.entry(o.violation.clone()).or_default();
        let Some(i) = best else {
            tally.false_positives += 1;
            out.misses.push(format!(
                "{name}: {} at {:.2} s matches no vehicle",
                o.violation,
                o.pts.as_secs_f64()
            ));
            continue;
        };
        let vehicle = &truth.vehicles[i];
        let key = (i, o.violation.clone());
        if !vehicle.violations.contains(&o.violation) || hit.contains(&key) {
            tally.false_positives += 1;
            out.misses.push(format!(
                "{name}: {} by vehicle {} ({}) is wrong{}",
                o.violation,
                vehicle.id,
                vehicle.plate,
                if hit.contains(&key) {
                    " (reported twice)"
                } else {
                    ""
                }
            ));
            continue;
        }
        tally.true_positives += 1;
        hit.push(key);
        if !plate_scored.contains(&i) {
            plate_scored.push(i);
            let exact = o.plate.as_deref() == Some(vehicle.plate.as_str());
            if o.plate.is_some() {
                out.plates.reliability.add(o.plate_confidence, exact);
            }
            if !exact && o.plate.is_some() {
                out.plates.wrong += 1;
                out.plates.wrong_max_confidence =
                    out.plates.wrong_max_confidence.max(o.plate_confidence);
            }
            if !exact {
                out.misses.push(format!(
                    "{name}: vehicle {} plate {} read as {}",
                    vehicle.id,
                    vehicle.plate,
                    o.plate.as_deref().unwrap_or("nothing")
                ));
            }
            match vehicle.plate_quality {
                PlateQuality::Clear => {
                    out.plates.clear += 1;
                    out.plates.clear_exact += exact as u32;
                }
                PlateQuality::Degraded => {
                    out.plates.degraded += 1;
                    out.plates.degraded_exact += exact as u32;
                }
            }
        }
    }
    for (i, v) in truth.vehicles.iter().enumerate() {
        for rule in &v.violations {
            if !hit.contains(&(i, rule.clone())) {
                out.rules.entry(rule.clone()).or_default().false_negatives += 1;
                out.misses.push(format!(
                    "{name}: missed {rule} by vehicle {} ({})",
                    v.id, v.plate
                ));
            }
        }
    }
    out
}

/// Score how the tracker kept identities against the truth's box of every vehicle on
/// every frame. Per analysed frame, tracks and vehicles are paired greedily by overlap
/// (at least `MATCH_IOU`); a vehicle whose track id changes is a switch, a track id
/// that moves to another vehicle is a jump. A vehicle unseen for a while and picked up
/// by a new track is a switch too: the figure counts every broken identity.
pub fn identity(name: &str, truth: &Truth, frames: &[FrameTracks]) -> (IdentityTally, Vec<String>) {
    let mut out = IdentityTally::default();
    let mut notes = Vec::new();
    let mut track_of: BTreeMap<usize, u64> = BTreeMap::new();
    let mut vehicle_of: BTreeMap<u64, usize> = BTreeMap::new();
    for f in frames {
        let frame = (f.pts.as_secs_f64() * truth.fps).round() as usize;
        let mut pairs: Vec<(f32, usize, u64)> = Vec::new();
        for (i, v) in truth.vehicles.iter().enumerate() {
            let Some(b) = v.boxes.get(frame).copied().flatten() else {
                continue;
            };
            for (id, bbox) in &f.tracks {
                let overlap = iou(bbox, &b);
                if overlap >= MATCH_IOU {
                    pairs.push((overlap, i, *id));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut used_v, mut used_t) = (Vec::new(), Vec::new());
        for (_, i, id) in pairs {
            if used_v.contains(&i) || used_t.contains(&id) {
                continue;
            }
            used_v.push(i);
            used_t.push(id);
            out.matched += 1;
            if let Some(before) = track_of.insert(i, id)
                && before != id
            {
                out.switches += 1;
            }
            if let Some(before) = vehicle_of.insert(id, i)
                && before != i
            {
                out.jumps += 1;
                notes.push(format!(
                    "{name}: track {id} jumped from vehicle {} to vehicle {} at {:.2} s",
                    truth.vehicles[before].id,
                    truth.vehicles[i].id,
                    f.pts.as_secs_f64()
                ));
            }
        }
    }
    (out, notes)
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("scenario {path}: {message}")]
    Truth { path: PathBuf, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("scenario {path}: {source}")]
    Analysis {
        path: PathBuf,
        source: AnalysisError,
    },
}

/// The truth files of a suite folder (`*.json`, here or in its `generated/`), in name
/// order; a truth file given itself is a suite of one.
pub fn find_scenarios(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out = Vec::new();
    for d in [dir.to_path_buf(), dir.join("generated")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn load_truth(path: &Path) -> Result<Truth, EvalError> {
    let err = |message: String| EvalError::Truth {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    serde_json::from_str(&text).map_err(|e| err(format!("not a scenario truth file: {e}")))
}

/// The camera a scenario was made for, as its truth file names it: what the models for
/// a suite are loaded for ([`Models::load_for`]).
pub fn scenario_camera(truth_path: &Path) -> Result<CameraConfig, EvalError> {
    let truth = load_truth(truth_path)?;
    let dir = truth_path.parent().unwrap_or(Path::new("."));
    Ok(CameraConfig::load(&dir.join(&truth.camera))?)
}

/// Run the pipeline over one scenario and score it; `on_frame` is called per analysed frame.
/// `gating`: look at each frame as the live runner does with motion gating on (skip still
/// frames, detect only in the changed region), so its recall can be compared.
/// `detector_size`: fit every scenario's frames to this for the detector, whatever its
/// camera says (see [`CameraConfig::detector_size`]).
pub fn run_scenario(
    models: &mut Models,
    truth_path: &Path,
    gating: bool,
    detector_size: Option<u32>,
    mut on_frame: impl FnMut(Duration, Option<Duration>),
) -> Result<(Score, Vec<Observed>), EvalError> {
    let truth = load_truth(truth_path)?;
    let dir = truth_path.parent().unwrap_or(Path::new("."));
    let mut camera = CameraConfig::load(&dir.join(&truth.camera))?;
    if detector_size.is_some() {
        camera.detector_size = detector_size;
    }
    let video = dir.join(&truth.video);
    let mut frames = FileSource::open(&video, camera.analysis_fps)?;
    let settings = AnalyzerSettings {
        motion_gating: gating,
        ..AnalyzerSettings::default()
    };
    // Scenarios are recordings: no controller feed to time, so the system clock serves.
    let mut analyzer = Analyzer::new(camera, settings, std::sync::Arc::new(SystemClock));
    let analysis = |source| EvalError::Analysis {
        path: video.clone(),
        source,
    };
    let mut found = Vec::new();
    let mut looks = LookTally::default();
    let mut followed = Vec::new();
    while let Some(frame) = frames.next_frame()? {
        on_frame(frame.pts, frames.duration());
        let (index, pts) = (frame.index, frame.pts);
        let analysed = analyzer.analyse(models, frame).map_err(analysis)?;
        followed.push(FrameTracks {
            pts,
            tracks: analyzer.followed(index).collect(),
        });
        match &analysed.look {
            Look::Whole => looks.whole += 1,
            Look::Regions(_) => looks.region += 1,
            Look::Skip => looks.skipped += 1,
            Look::Coast => looks.coasted += 1,
        }
        found.extend(analysed.findings.iter().map(Observed::from_finding));
    }
    let findings = analyzer.finish(models).map_err(analysis)?;
    found.extend(findings.iter().map(Observed::from_finding));
    let name = truth_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut score = score(&name, &truth, &found);
    score.looks = looks;
    let (identity, notes) = identity(&name, &truth, &followed);
    score.identity = identity;
    score.misses.extend(notes);
    Ok((score, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two vehicles over 10 frames at 5 fps: vehicle 1 runs the red light, vehicle 2 does
    /// nothing wrong.
    fn truth() -> Truth {
        let boxes = |x: f32| {
            (0..10)
                .map(|i| Some([x + 10.0 * i as f32, 0.0, x + 10.0 * i as f32 + 50.0, 50.0]))
                .collect()
        };
        Truth {
            video: "v.mp4".into(),
            camera: "c.toml".into(),
            fps: 5.0,
            conditions: vec![],
            vehicles: vec![
                TruthVehicle {
                    id: 1,
                    plate: "98A-123.45".into(),
                    violations: vec!["red_light".into()],
                    plate_quality: PlateQuality::Clear,
                    boxes: boxes(0.0),
                },
                TruthVehicle {
                    id: 2,
                    plate: "99B1-123.45".into(),
                    violations: vec![],
                    plate_quality: PlateQuality::Degraded,
                    boxes: boxes(300.0),
                },
            ],
        }
    }

    fn seen(rule: &str, frame: u64, x: f32, plate: Option<&str>) -> Observed {
        Observed {
            violation: rule.into(),
            pts: Duration::from_millis(frame * 200),
            bbox: BBox::new(
                x + 10.0 * frame as f32,
                2.0,
                x + 10.0 * frame as f32 + 48.0,
                50.0,
            ),
            plate: plate.map(String::from),
            plate_confidence: if plate.is_some() { 0.9 } else { 0.0 },
        }
    }

    #[test]
    fn a_found_violation_with_its_plate_is_a_true_positive_and_an_exact_read() {
        let s = score(
            "s",
            &truth(),
            &[seen("red_light", 4, 0.0, Some("98A-123.45"))],
        );
        assert_eq!(
            s.rules["red_light"],
            Tally {
                true_positives: 1,
                false_positives: 0,
                false_negatives: 0
            }
        );
        assert_eq!((s.plates.clear, s.plates.clear_exact), (1, 1));
        let r = s.report();
        assert_eq!(
            (r.rules["red_light"].precision, r.rules["red_light"].recall),
            (1.0, 1.0)
        );
        assert_eq!((r.plates.clear, r.plates.n), (1.0, 1));
    }

    #[test]
    fn the_wrong_vehicle_a_duplicate_and_a_miss_are_each_counted() {
        let s = score(
            "s",
            &truth(),
            &[
                seen("red_light", 4, 300.0, Some("99B1-123.45")), // the innocent vehicle
                seen("wrong_way", 5, 900.0, None),                // nothing there
            ],
        );
        assert_eq!(
            s.rules["red_light"],
            Tally {
                true_positives: 0,
                false_positives: 1,
                false_negatives: 1
            }
        );
        assert_eq!(s.rules["wrong_way"].false_positives, 1);
        assert_eq!(
            s.plates.clear + s.plates.degraded,
            0,
            "plates are scored on true finds only"
        );
        let s = score(
            "s",
            &truth(),
            &[
                seen("red_light", 4, 0.0, Some("98A-128.45")),
                seen("red_light", 6, 0.0, None),
            ],
        );
        assert_eq!(
            s.rules["red_light"],
            Tally {
                true_positives: 1,
                false_positives: 1,
                false_negatives: 0
            }
        );
        assert_eq!((s.plates.clear, s.plates.clear_exact), (1, 0));
        assert_eq!(s.report().rules["red_light"].precision, 0.5);
    }

    #[test]
    fn scores_add_up_across_scenarios() {
        let mut total = score(
            "a",
            &truth(),
            &[seen("red_light", 4, 0.0, Some("98A-123.45"))],
        );
        total.add(&score("b", &truth(), &[]));
        let r = total.report();
        assert_eq!(r.rules["red_light"].support, 2);
        assert_eq!(r.rules["red_light"].recall, 0.5);
        assert_eq!(total.misses.len(), 1);
    }

    #[test]
    fn a_case_with_another_vehicles_plate_is_counted_and_named() {
        // Vehicle 1's violation found on vehicle 1 but carrying vehicle 2's plate; and a
        // false find on empty road carrying vehicle 1's.
        let s = score(
            "s",
            &truth(),
            &[
                seen("red_light", 4, 0.0, Some("99B1-123.45")),
                seen("wrong_way", 5, 900.0, Some("98A-123.45")),
            ],
        );
        assert_eq!(s.plates.other_vehicles, 2);
        assert_eq!(s.plates.wrong, 1);
        assert!((s.plates.wrong_max_confidence - 0.9).abs() < 1e-6);
        assert!(
            s.misses
                .iter()
                .any(|m| m.contains("carries vehicle 2's plate"))
        );
        // Its own plate, or no plate at all, is not another vehicle's.
        let s = score("s", &truth(), &[seen("red_light", 4, 0.0, None)]);
        assert_eq!((s.plates.other_vehicles, s.plates.wrong), (0, 0));
        assert_eq!(s.report().plates.other_vehicles, 0);
    }

    fn frames(tracks: impl Fn(usize) -> Vec<(u64, f32)>) -> Vec<FrameTracks> {
        (0..10)
            .map(|i| FrameTracks {
                pts: Duration::from_millis(i as u64 * 200),
                tracks: tracks(i)
                    .into_iter()
                    .map(|(id, x)| {
                        let x = x + 10.0 * i as f32;
                        (id, BBox::new(x, 0.0, x + 50.0, 50.0))
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn identities_kept_switched_and_jumped_are_told_apart() {
        let t = truth();
        // One track per vehicle all along: nothing broken.
        let (id, notes) = identity("s", &t, &frames(|_| vec![(1, 0.0), (2, 300.0)]));
        assert_eq!((id.matched, id.switches, id.jumps), (20, 0, 0));
        assert!(notes.is_empty());
        // Vehicle 2's track is replaced by a new one at frame 5: a switch, no jump.
        let (id, _) = identity(
            "s",
            &t,
            &frames(|i| vec![(1, 0.0), (if i < 5 { 2 } else { 3 }, 300.0)]),
        );
        assert_eq!((id.switches, id.jumps), (1, 0));
        // Track 1 leaves vehicle 1 for vehicle 2 at frame 6 (vehicle 1's own track is
        // then a new one): the jump is counted and named, and both vehicles switch.
        let (id, notes) = identity(
            "s",
            &t,
            &frames(|i| {
                if i < 6 {
                    vec![(1, 0.0), (2, 300.0)]
                } else {
                    vec![(4, 0.0), (1, 300.0)]
                }
            }),
        );
        assert_eq!((id.switches, id.jumps), (2, 1));
        assert!(
            notes[0].contains("track 1 jumped from vehicle 1 to vehicle 2"),
            "{notes:?}"
        );
        // A box overlapping no vehicle matches nothing.
        let (id, _) = identity("s", &t, &frames(|_| vec![(9, 150.0)]));
        assert_eq!(id.matched, 0);
    }
}
