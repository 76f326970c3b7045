//! The per-camera analysis: detect vehicles, track them, apply the camera's rules, and
//! for each violation gather the key frames and read the plate.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use image::RgbImage;
use serde::Serialize;
use vigil_models::{
    BBox, Detection, Detector, Manifest, ModelError, Region, TextDetector, TextRecognizer,
};

use crate::config::CameraConfig;
use crate::frame::Frame;
use crate::motion::MotionGate;
use crate::plate_reader::{PlateRead, PlateReader, vote};
use crate::rules::{RuleSet, Violation};
use crate::signal::{SignalSource, SignalState};
use crate::tracker::{Observation, Track, Tracker, TrackerSettings};

/// A model as the evidence records it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub role: String,
    pub file: String,
    pub sha256: String,
    pub package: String,
    pub version: String,
}

/// The models the analysis runs.
pub struct Models {
    pub vehicle: Detector,
    pub plates: PlateReader,
    pub info: Vec<ModelInfo>,
}

impl Models {
    pub const VEHICLE: &'static str = "vehicle_detector";
    pub const TEXT_DETECTOR: &'static str = "text_detector";
    pub const TEXT_RECOGNIZER: &'static str = "text_recognizer";

    pub fn load(manifest_path: &Path) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        // Check every file before loading any, so one run reports the first bad file by name.
        let mut info = Vec::new();
        for role in [Self::VEHICLE, Self::TEXT_DETECTOR, Self::TEXT_RECOGNIZER] {
            let (path, spec) = manifest.verified(role)?;
            info.push(ModelInfo {
                role: role.into(),
                file: path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: spec.sha256.clone(),
                package: spec.source.package.clone(),
                version: spec.source.version.clone(),
            });
        }
        Ok(Self {
            vehicle: Detector::load(&manifest, Self::VEHICLE)?,
            plates: PlateReader {
                detector: TextDetector::load(&manifest, Self::TEXT_DETECTOR)?,
                recognizer: TextRecognizer::load(&manifest, Self::TEXT_RECOGNIZER)?,
            },
            info,
        })
    }
}

/// A frame of the violation as evidence shows it.
#[derive(Debug, Clone)]
pub struct KeyFrame {
    pub label: &'static str,
    pub frame: Frame,
    pub bbox: BBox,
    pub signal: SignalState,
}

/// A decided violation, ready to become evidence and a case.
#[derive(Debug, Clone)]
pub struct Finding {
    pub violation: Violation,
    pub vehicle_class: String,
    pub key_frames: Vec<KeyFrame>,
    pub plate: Option<PlateRead>,
    pub plate_confidence: f32,
    /// The crop the plate was read from, cut to the plate.
    pub plate_crop: Option<RgbImage>,
    pub plate_colour: Option<crate::plate::PlateColour>,
}

/// A plate read off a vehicle that passed, violation or not (investigators search them).
#[derive(Debug, Clone)]
pub struct PlateSighting {
    pub track_id: u64,
    pub plate: String,
    pub confidence: f32,
    pub vehicle_class: String,
    pub colour: Option<crate::plate::PlateColour>,
    /// When the vehicle was seen best (its crop's frame).
    pub pts: Duration,
    /// The vehicle, as read.
    pub crop: RgbImage,
}

/// A vehicle crop kept as a candidate for plate reading.
struct Crop {
    quality: f32,
    pts: Duration,
    /// The whole vehicle is in the picture (not cut by the frame's edge).
    whole: bool,
    image: RgbImage,
}

struct Pending {
    violation: Violation,
    before: KeyFrame,
    on: KeyFrame,
    /// Taken `after_delay` past the violation, kept while the plate waits for a better view.
    after: Option<KeyFrame>,
}

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
    /// followed between detections, and only the signal is read (see
    /// [`Analyzer::may_coast`]).
    Coast,
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

/// Reads of one plate at one camera this close together (stream time) are one passage.
const SIGHTING_MERGE: Duration = Duration::from_secs(10);

/// Context around a changed region: the detector needs some of the scene around a
/// vehicle, and the thumbnail that found the change blurs its edges. Measured on the
/// scenario suite: at 32 px the motion-blurred motorbike in `redlight_blur` scored
/// 0.14-0.26 in its region (0.19-0.67 in the whole frame) and its red light was lost; at
/// 48 px and more every violation was found.
const REGION_MARGIN: u32 = 64;
/// Regions whose model runs cost more than this share of the whole frame's between them
/// (in input pixels, padded as the engine pads): the frame is looked at whole, for the
/// saving would be small.
const MAX_REGION_SHARE: f64 = 0.85;
/// How far (pixels) past its path's steady motion a vehicle is allowed to be when
/// judging whether it can reach a rule's geometry before the next detection.
const COAST_SLACK: f32 = 32.0;
/// Frames followed in a row at most before one is detected again.
const MAX_COASTED: u32 = 2;
/// A track seen once has no speed yet: it is given this much reach instead.
const COAST_UNKNOWN_REACH: f32 = 128.0;

pub struct AnalyzerSettings {
    /// Vehicle crops per track kept for plate reading.
    pub plate_candidates: usize,
    /// How long after the crossing the "after" key frame is taken.
    pub after_delay: Duration,
    /// How long past `after_delay` a violation may wait for a view of the whole vehicle
    /// to read its plate from (one caught entering the picture has shown only part).
    pub plate_wait: Duration,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            plate_candidates: 4,
            after_delay: Duration::from_secs(1),
            plate_wait: Duration::from_secs(4),
        }
    }
}

/// One camera's analysis state (tracks, pending violations, recent frames). The models
/// are lent per call, so one set of models can serve several cameras.
pub struct Analyzer {
    camera: CameraConfig,
    settings: AnalyzerSettings,
    tracker: Tracker,
    rules: RuleSet,
    signal: Option<SignalSource>,
    /// Recent frames with their signal state, for key frames.
    recent: VecDeque<(Frame, SignalState)>,
    crops: HashMap<u64, Vec<Crop>>,
    pending: Vec<Pending>,
    checked_size: bool,
    /// Wall-clock time of the source's first frame, where known (live cameras).
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the last frame was analysed.
    last_pts: Option<Duration>,
    /// Which frame was analysed last.
    last_index: Option<u64>,
    /// Plates read off passing vehicles, not yet taken.
    sightings: Vec<PlateSighting>,
    /// Tracks whose plate a violation already read.
    read: std::collections::HashSet<u64>,
    /// When each plate was last read here (stream time), to keep one sighting a passage.
    sighted: HashMap<String, Duration>,
    /// Frames followed in a row since the last detection.
    coasted: u32,
}

impl Analyzer {
    pub fn new(camera: CameraConfig, settings: AnalyzerSettings) -> Self {
        Self {
            rules: RuleSet::from_config(&camera),
            signal: camera.signal.as_ref().map(SignalSource::from_config),
            tracker: Tracker::new(TrackerSettings::default()),
            recent: VecDeque::new(),
            crops: HashMap::new(),
            pending: Vec::new(),
            checked_size: false,
            started_at: None,
            last_pts: None,
            last_index: None,
            sightings: Vec::new(),
            read: std::collections::HashSet::new(),
            sighted: HashMap::new(),
            coasted: 0,
            camera,
            settings,
        }
    }

    /// The wall-clock time of the source's first frame: frames are placed in real time by
    /// it (a signal controller's feed is matched so).
    pub fn set_started_at(&mut self, t: chrono::DateTime<chrono::Utc>) {
        self.started_at = Some(t);
    }

    /// Whether this frame must be analysed even if nothing in it moved: a camera that
    /// times vehicles standing still (no stopping) must keep seeing them, or their tracks
    /// end while the scene is still and the stand is never timed.
    pub fn must_see(&self, pts: Duration) -> bool {
        !self.camera.no_stopping.is_empty()
            && !self.tracker.live().is_empty()
            && self
                .last_pts
                .is_none_or(|last| pts.saturating_sub(last) >= self.tracker.settings.max_lost / 2)
    }

    /// A violation is waiting for its "after" frame: every frame matters until it has it.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn camera(&self) -> &CameraConfig {
        &self.camera
    }

    /// What of `frame` to detect in, by what `gate` says changed since the last analysed
    /// frame; without a gate (motion gating off), all of it. Regions only where
    /// `detector` takes any input size. A frame that a pending violation or a stand being
    /// timed needs is never skipped: where nothing changed it is looked at whole.
    pub fn look(&self, gate: Option<&mut MotionGate>, frame: &Frame, detector: &Detector) -> Look {
        let Some(gate) = gate else {
            return Look::Whole;
        };
        let needed = self.has_pending() || self.must_see(frame.pts);
        let Some(changed) = gate.changed(&frame.image) else {
            if needed {
                gate.rebase(&frame.image);
                return Look::Whole;
            }
            return Look::Skip;
        };
        let (w, h) = frame.image.dimensions();
        if self.last_index.is_none() {
            return Look::Whole;
        }
        let mut regions: Vec<Region> = changed
            .into_iter()
            .map(|r| r.grown(REGION_MARGIN, w, h))
            .collect();
        // A vehicle partly inside is taken in whole, or the detector would see it cut at
        // the region's edge; regions that then overlap become one; each step can reach
        // further.
        let seen: Vec<BBox> = self.last_seen().map(|t| t.last().bbox).collect();
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
        if self.may_coast(frame.pts, &regions) {
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
        if !detector.takes_regions() || cost as f64 > MAX_REGION_SHARE * whole as f64 {
            Look::Whole
        } else {
            Look::Regions(regions)
        }
    }

    /// Whether the frame at `pts`, changed in `regions`, may be followed rather than
    /// detected in ("track between detections"): fewer than [`MAX_COASTED`] frames in a
    /// row were followed, nothing waits for a key frame, no change touches a rule's
    /// geometry, and no vehicle being followed can reach it before the next frame, where
    /// the same is asked again. So every frame near a stop line, speed line, painted line
    /// or zone is still detected, and a vehicle far from all of them at least every third
    /// frame.
    fn may_coast(&self, pts: Duration, regions: &[Region]) -> bool {
        if self.coasted >= MAX_COASTED || self.has_pending() || self.must_see(pts) {
            return false;
        }
        if regions.iter().any(|r| self.rules.watches(&r.as_bbox())) {
            return false;
        }
        let Some(last) = self.last_pts else {
            return false;
        };
        // Until the next frame: this one and one more interval.
        let interval = Duration::from_secs_f64(1.0 / self.camera.analysis_fps.max(1) as f64);
        let ahead = (pts.saturating_sub(last) + interval).as_secs_f32();
        !self.tracker.live().iter().any(|t| {
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
            self.rules.watches(&reachable)
        })
    }

    /// Tracks seen on the last analysed frame.
    fn last_seen(&self) -> impl Iterator<Item = &Track> {
        self.last_index
            .into_iter()
            .flat_map(|i| self.tracker.current(i))
    }

    /// Analyse one frame whole; returns the violations that became complete with it.
    pub fn process(
        &mut self,
        models: &mut Models,
        frame: Frame,
    ) -> Result<Vec<Finding>, AnalysisError> {
        self.process_looking(models, frame, Look::Whole)
    }

    /// Analyse one frame, detecting where `look` says (see [`Analyzer::look`]).
    pub fn process_looking(
        &mut self,
        models: &mut Models,
        frame: Frame,
        look: Look,
    ) -> Result<Vec<Finding>, AnalysisError> {
        if look == Look::Skip {
            return Ok(Vec::new());
        }
        if look == Look::Coast {
            // The signal is read on every frame that moved, or its change would be seen
            // a frame late and a red light's time misjudged.
            self.coasted += 1;
            let signal = self.signal_at(&frame);
            self.rules.signal(frame.pts, signal);
            return Ok(Vec::new());
        }
        self.coasted = 0;
        if !self.checked_size {
            self.camera
                .check_frame_size(frame.image.width(), frame.image.height())?;
            self.checked_size = true;
            // The detector's own confidence is what counts as a confident detection; the
            // tracker takes weaker boxes too, so a half-hidden vehicle extends its track.
            let confident = models
                .vehicle
                .confidence
                .max(self.tracker.settings.low_score);
            self.tracker.settings.high_score = confident;
            self.tracker.settings.new_track_score = confident;
        }
        self.last_pts = Some(frame.pts);
        let brightened = crate::exposure::for_detection(&frame.image);
        let image = brightened.as_ref().unwrap_or(&frame.image);
        let low = self.tracker.settings.low_score;
        let regions = match &look {
            Look::Regions(r) if models.vehicle.takes_regions() => Some(r.as_slice()),
            _ => None,
        };
        let mut detections = match regions {
            Some(regions) => models.vehicle.detect_in_regions(image, regions, low)?,
            None => models.vehicle.detect_above(image, low)?,
        };
        if let Some(regions) = regions {
            // Outside the regions the picture is as it was on the last analysed frame, so
            // what was seen there is still there, where it was.
            let carried: Vec<Detection> = self
                .last_seen()
                .map(|t| t.last())
                .filter(|p| !regions.iter().any(|r| r.overlaps(p.bbox)))
                .map(|p| Detection {
                    bbox: p.bbox,
                    class_id: p.class_id,
                    score: p.score,
                })
                .collect();
            detections.extend(carried);
        }
        self.last_index = Some(frame.index);
        tracing::trace!(camera = %self.camera.id, frame = frame.index, t = ?frame.pts, ?look, detections = ?detections.iter().map(|d| (d.class_id, (d.score * 100.0).round() / 100.0, d.bbox.x1.round(), d.bbox.y1.round(), d.bbox.x2.round(), d.bbox.y2.round())).collect::<Vec<_>>(), "detected");
        let signal = self.signal_at(&frame);
        self.rules.signal(frame.pts, signal);
        let observations: Vec<Observation> = detections
            .iter()
            .map(|d| Observation {
                bbox: d.bbox,
                score: d.score,
                class_id: d.class_id,
            })
            .collect();
        let ended = self.tracker.update(frame.index, frame.pts, &observations);
        tracing::trace!(camera = %self.camera.id, frame = frame.index, tracks = ?self.tracker.live().iter().map(|t| (t.id, format!("{:?}", t.state), t.last().frame, t.last().bbox.x1.round(), t.last().bbox.x2.round(), t.last().bbox.y2.round())).collect::<Vec<_>>(), "tracks");

        let keep = (self.settings.after_delay.as_secs_f64() * self.camera.analysis_fps as f64)
            .ceil() as usize
            // A crossing is confirmed a frame or two after the line is reached; its
            // "before" and "on" frames must still be here then.
            + 5;
        self.recent.push_back((frame.clone(), signal));
        while self.recent.len() > keep.max(4) {
            self.recent.pop_front();
        }

        let current: Vec<Track> = self.tracker.current(frame.index).cloned().collect();
        for track in &current {
            self.keep_crop(track, &frame);
            let class = class_name(&models.vehicle, track.class_id());
            for violation in self.rules.observe(track, &class) {
                self.start_pending(violation, track);
            }
        }

        let mut done = Vec::new();
        let mut still = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            let track = current.iter().find(|t| t.id == p.violation.track_id);
            let ended_track = ended.iter().find(|t| t.id == p.violation.track_id);
            let seen_whole = self
                .crops
                .get(&p.violation.track_id)
                .is_some_and(|c| c.iter().any(|c| c.whole));
            let after = p.violation.pts + self.settings.after_delay;
            if p.after.is_none()
                && frame.pts >= after
                && let Some(t) = track
            {
                let last = t.last();
                p.after = self.key_frame("after", last.frame, last.bbox);
            }
            let late_enough =
                frame.pts >= after && (seen_whole || frame.pts >= after + self.settings.plate_wait);
            match (track, ended_track) {
                (Some(t), _) if late_enough => done.push(self.complete(models, p, t)?),
                (_, Some(t)) => done.push(self.complete(models, p, t)?),
                _ => still.push(p),
            }
        }
        self.pending = still;
        for t in &ended {
            self.sight(models, t)?;
        }
        // Crops of tracks that ended, or were dropped unconfirmed, go with them.
        let tracker = &self.tracker;
        self.crops.retain(|id, _| tracker.get(*id).is_some());
        self.rules.retain(&|id| tracker.get(id).is_some());
        self.read.retain(|id| tracker.get(*id).is_some());
        // A read's time is when its vehicle was seen best, which may be well before the
        // track ends: plates are forgotten only long after.
        let now = frame.pts;
        self.sighted
            .retain(|_, last| now.saturating_sub(*last) <= SIGHTING_MERGE * 30);
        Ok(done)
    }

    fn signal_at(&self, frame: &Frame) -> SignalState {
        match &self.signal {
            Some(source) => {
                let wall = self
                    .started_at
                    .map(|t| t + chrono::Duration::from_std(frame.pts).unwrap_or_default());
                source.state(&frame.image, frame.pts, wall)
            }
            None => SignalState::Unknown,
        }
    }

    /// The stream ended: complete every pending violation with what was seen.
    pub fn finish(&mut self, models: &mut Models) -> Result<Vec<Finding>, AnalysisError> {
        let tracks = self.tracker.finish();
        let mut done = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            if let Some(t) = tracks.iter().find(|t| t.id == p.violation.track_id) {
                done.push(self.complete(models, p, t)?);
            }
        }
        for t in &tracks {
            self.sight(models, t)?;
        }
        self.crops.clear();
        self.read.clear();
        Ok(done)
    }

    /// Plates read off vehicles since the last call.
    pub fn take_sightings(&mut self) -> Vec<PlateSighting> {
        std::mem::take(&mut self.sightings)
    }

    /// Read the plate of a track that ended, unless a violation read it already. Two of
    /// its best crops are read (a violation reads all it kept): every vehicle passing
    /// costs this, so it is kept small.
    fn sight(&mut self, models: &mut Models, track: &Track) -> Result<(), AnalysisError> {
        if self.read.contains(&track.id) {
            return Ok(());
        }
        let Some(crops) = self.crops.get(&track.id) else {
            return Ok(());
        };
        let mut reads = Vec::new();
        for crop in crops.iter().take(2) {
            if let Some(read) = models.plates.read(&crop.image)? {
                reads.push((read, crop));
            }
        }
        let only: Vec<PlateRead> = reads.iter().map(|(r, _)| r.clone()).collect();
        if let Some((best, confidence)) = vote(&only) {
            let (read, crop) = &reads[best];
            self.add_sighting(PlateSighting {
                track_id: track.id,
                plate: read.plate.to_string(),
                confidence,
                vehicle_class: class_name(&models.vehicle, track.class_id()),
                colour: read.colour,
                pts: crop.pts,
                crop: crop.image.clone(),
            });
        }
        Ok(())
    }

    /// Keep a plate read as a sighting, unless the same plate was read here within
    /// [`SIGHTING_MERGE`]: then it is the same passage seen by a second track (a track
    /// broken behind another vehicle, or a box that took in two), and one row per passage
    /// is what an investigator wants.
    fn add_sighting(&mut self, sighting: PlateSighting) {
        let at = sighting.pts;
        let again = self
            .sighted
            .get(&sighting.plate)
            .is_some_and(|last| at.abs_diff(*last) <= SIGHTING_MERGE);
        // A vehicle standing in view keeps being one passage however long it stands.
        let last = self.sighted.entry(sighting.plate.clone()).or_insert(at);
        *last = (*last).max(at);
        if again {
            tracing::debug!(plate = %sighting.plate, track = sighting.track_id, "plate read again within the same passage; not a new sighting");
            return;
        }
        self.sightings.push(sighting);
    }

    fn key_frame(&self, label: &'static str, frame_index: u64, bbox: BBox) -> Option<KeyFrame> {
        self.recent
            .iter()
            .find(|(f, _)| f.index == frame_index)
            .map(|(f, s)| KeyFrame {
                label,
                frame: f.clone(),
                bbox,
                signal: *s,
            })
    }

    fn start_pending(&mut self, violation: Violation, track: &Track) {
        let point = |frame: u64| {
            track
                .points
                .iter()
                .find(|p| p.frame == frame)
                .map(|p| p.bbox)
        };
        // A "before" older than the frames kept (a vehicle that stood for minutes) is
        // shown by the oldest kept frame the vehicle is on.
        let before = point(violation.before_frame)
            .and_then(|b| self.key_frame("before", violation.before_frame, b))
            .or_else(|| {
                self.recent.iter().find_map(|(f, _)| {
                    point(f.index).and_then(|b| self.key_frame("before", f.index, b))
                })
            });
        let on = point(violation.frame).and_then(|b| self.key_frame("on", violation.frame, b));
        match (before, on) {
            (Some(before), Some(on)) => self.pending.push(Pending {
                violation,
                before,
                on,
                after: None,
            }),
            _ => tracing::warn!(
                track = track.id,
                rule = %violation.rule,
                "violation without its key frames; not reported"
            ),
        }
    }

    fn keep_crop(&mut self, track: &Track, frame: &Frame) {
        let p = track.last();
        let (w, h) = frame.image.dimensions();
        // A box cut by the frame edge hides part of the vehicle, maybe its plate.
        let inside = p.bbox.x1 > 2.0
            && p.bbox.y1 > 2.0
            && p.bbox.x2 < w as f32 - 2.0
            && p.bbox.y2 < h as f32 - 2.0;
        let quality = p.score * p.bbox.area() * if inside { 1.0 } else { 0.25 };
        let crops = self.crops.entry(track.id).or_default();
        let limit = self.settings.plate_candidates;
        if crops.len() >= limit && crops.iter().all(|c| c.quality >= quality) {
            return;
        }
        let margin = 0.05;
        let grown = BBox::new(
            p.bbox.x1 - p.bbox.width() * margin,
            p.bbox.y1 - p.bbox.height() * margin,
            p.bbox.x2 + p.bbox.width() * margin,
            p.bbox.y2 + p.bbox.height() * margin,
        );
        let Some((x, y, cw, ch)) = grown.pixel_rect(w, h) else {
            return;
        };
        let image = image::imageops::crop_imm(frame.image.as_ref(), x, y, cw, ch).to_image();
        crops.push(Crop {
            quality,
            pts: frame.pts,
            whole: inside,
            image,
        });
        crops.sort_by(|a, b| b.quality.total_cmp(&a.quality));
        crops.truncate(limit);
    }

    fn complete(
        &mut self,
        models: &mut Models,
        p: Pending,
        track: &Track,
    ) -> Result<Finding, AnalysisError> {
        let last = track.last();
        let after_index = track
            .points
            .iter()
            .find(|pt| pt.pts >= p.violation.pts + self.settings.after_delay)
            .unwrap_or(last);
        let after = p.after.clone().or_else(|| {
            self.key_frame("after", after_index.frame, after_index.bbox)
                .or_else(|| self.key_frame("after", last.frame, last.bbox))
        });
        let mut reads: Vec<(PlateRead, usize)> = Vec::new();
        let crops = self
            .crops
            .get(&track.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, crop) in crops.iter().enumerate() {
            if let Some(read) = models.plates.read(&crop.image)? {
                reads.push((read, i));
            }
        }
        tracing::debug!(
            track = track.id,
            crops = crops.len(),
            reads = ?reads.iter().map(|(r, _)| (r.plate.to_string(), r.confidence)).collect::<Vec<_>>(),
            "plate reads"
        );
        let only: Vec<PlateRead> = reads.iter().map(|(r, _)| r.clone()).collect();
        let (plate, plate_confidence, plate_crop, read_from) = match vote(&only) {
            Some((best, confidence)) => {
                let (read, crop_index) = &reads[best];
                let image = &crops[*crop_index].image;
                let crop = read
                    .bbox
                    .pixel_rect(image.width(), image.height())
                    .map(|(x, y, w, h)| image::imageops::crop_imm(image, x, y, w, h).to_image());
                (Some(read.clone()), confidence, crop, Some(*crop_index))
            }
            None => (None, 0.0, None, None),
        };
        let vehicle_class = class_name(&models.vehicle, track.class_id());
        let plate_colour = plate.as_ref().and_then(|p| p.colour);
        if let Some((p, i)) = plate.as_ref().zip(read_from) {
            self.read.insert(track.id);
            let crop = &crops[i];
            self.add_sighting(PlateSighting {
                track_id: track.id,
                plate: p.plate.to_string(),
                confidence: plate_confidence,
                vehicle_class: vehicle_class.clone(),
                colour: p.colour,
                pts: crop.pts,
                crop: crop.image.clone(),
            });
        }
        let mut key_frames = vec![p.before, p.on];
        key_frames.extend(after);
        Ok(Finding {
            violation: p.violation,
            vehicle_class,
            key_frames,
            plate,
            plate_confidence,
            plate_crop,
            plate_colour,
        })
    }
}

fn class_name(detector: &Detector, class_id: usize) -> String {
    detector
        .classes
        .get(class_id)
        .cloned()
        .unwrap_or_else(|| class_id.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An analyzer for a 640x360 camera whose rules are `rules` (TOML).
    fn camera(rules: &str) -> Analyzer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cam.toml");
        let config = format!("id = \"cam\"\nname = \"test\"\nlocation = \"test\"\n{rules}");
        std::fs::write(&path, config).expect("write config");
        let camera = CameraConfig::load(&path).expect("config");
        Analyzer::new(camera, AnalyzerSettings::default())
    }

    /// A junction with a stop line down x = 440, traffic left to right.
    fn junction() -> Analyzer {
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
    fn detect(a: &mut Analyzer, i: u64, x1: f32, x2: f32) -> Duration {
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
