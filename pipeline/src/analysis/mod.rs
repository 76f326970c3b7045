//! One camera's analysis: each frame is looked at as the [`schedule`] decides, its
//! detections tracked ([`tracker`]), the camera's rules applied, and each violation given
//! its [`keyframes`] and its plate ([`plate_crops`]); plates of vehicles that broke no
//! rule become sightings. [`Analyzer`] coordinates the parts, each of which owns its state;
//! the [`models`] are lent per call, so one set can serve several cameras.

pub mod exposure;
pub mod heads;
pub mod inference;
pub mod keyframes;
pub mod models;
pub mod motion;
pub mod plate_crops;
pub mod schedule;
pub mod tracker;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use image::RgbImage;
use vigil_core::{Clock, PlateColour};
use vigil_models::{BBox, DetectRequest, Detection, ModelError};

use crate::config::CameraConfig;
use crate::frame::Frame;
use crate::plates::PlateRead;
use crate::rules::{RuleSet, Violation};
use crate::signal::{SignalSource, SignalState};
use heads::Heads;
use inference::{OwnDetector, VehicleStage};
use keyframes::{Pending, Recent};
use plate_crops::{PlateCrops, Sightings};
use schedule::{Scene, Schedule};
use tracker::{Observation, Track, Tracker, TrackerSettings};

pub use keyframes::KeyFrame;
pub use models::{ModelInfo, Models};
pub use plate_crops::PlateSighting;
pub use schedule::Look;

/// A decided violation, ready to become evidence and a case.
#[derive(Debug, Clone)]
pub struct Finding {
    pub violation: Violation,
    pub vehicle_class: String,
    pub key_frames: Vec<KeyFrame>,
    pub plate: Option<PlateRead>,
    pub plate_confidence: f32,
    /// The other plates the track's reads point to, likeliest first, with their
    /// confidence on the plate's scale: what a reviewer picks from when the plate is
    /// uncertain.
    pub plate_candidates: Vec<(String, f32)>,
    /// The crop the plate was read from, cut to the plate.
    pub plate_crop: Option<RgbImage>,
    /// A no-helmet violation's best look at the rider's bare head.
    pub head_crop: Option<RgbImage>,
    pub plate_colour: Option<PlateColour>,
}

/// What one frame's analysis did.
#[derive(Debug)]
pub struct Analysed {
    /// How the frame was looked at.
    pub look: Look,
    /// The violations that became complete with it.
    pub findings: Vec<Finding>,
}

pub struct AnalyzerSettings {
    /// Vehicle crops per track kept for plate reading.
    pub plate_candidates: usize,
    /// How long after the crossing the "after" key frame is taken.
    pub after_delay: Duration,
    /// How long past `after_delay` a violation may wait for a view of the whole vehicle
    /// to read its plate from (one caught entering the picture has shown only part).
    pub plate_wait: Duration,
    /// Detect only where the picture changed, skip still frames and follow vehicles
    /// between detections away from the rules' geometry (see [`schedule`]).
    pub motion_gating: bool,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            plate_candidates: 4,
            after_delay: Duration::from_secs(1),
            plate_wait: Duration::from_secs(4),
            motion_gating: false,
        }
    }
}

/// One camera's analysis state.
pub struct Analyzer {
    camera: CameraConfig,
    settings: AnalyzerSettings,
    schedule: Schedule,
    tracker: Tracker,
    rules: RuleSet,
    signal: Option<SignalSource>,
    recent: Recent,
    crops: PlateCrops,
    heads: Heads,
    sightings: Sightings,
    pending: Vec<Pending>,
    checked_size: bool,
    /// Wall-clock time of the source's first frame, where known.
    started_at: Option<DateTime<Utc>>,
    /// When, and which, frame was last detected in.
    last_pts: Option<Duration>,
    last_index: Option<u64>,
}

impl Analyzer {
    pub fn new(camera: CameraConfig, settings: AnalyzerSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            rules: RuleSet::from_config(&camera),
            signal: camera
                .signal
                .as_ref()
                .map(|s| SignalSource::from_config(s, clock)),
            schedule: Schedule::new(settings.motion_gating),
            tracker: Tracker::new(TrackerSettings::default()),
            recent: Recent::default(),
            crops: PlateCrops::new(settings.plate_candidates),
            heads: Heads::default(),
            sightings: Sightings::default(),
            pending: Vec::new(),
            checked_size: false,
            started_at: None,
            last_pts: None,
            last_index: None,
            camera,
            settings,
        }
    }

    /// The wall-clock time of the source's first frame: frames are placed in real time by
    /// it (a signal controller's feed is matched so).
    pub fn set_started_at(&mut self, t: DateTime<Utc>) {
        self.started_at = Some(t);
    }

    pub fn camera(&self) -> &CameraConfig {
        &self.camera
    }

    /// The confirmed tracks detected on a frame, with their boxes there (for scoring
    /// identities against ground truth).
    pub fn followed(&self, frame: u64) -> impl Iterator<Item = (u64, BBox)> + '_ {
        self.tracker
            .current(frame)
            .filter(|t| t.state != tracker::TrackState::New)
            .map(|t| (t.id, t.last().bbox))
    }

    /// Whether this frame must be analysed even if nothing in it moved: a camera that
    /// times vehicles standing still (no stopping) must keep seeing them, or their tracks
    /// end while the scene is still and the stand is never timed.
    fn must_see(&self, pts: Duration) -> bool {
        !self.camera.no_stopping.is_empty()
            && !self.tracker.live().is_empty()
            && self
                .last_pts
                .is_none_or(|last| pts.saturating_sub(last) >= self.tracker.settings.max_lost / 2)
    }

    /// Analyse one frame, looked at as the schedule decides, with the lent models' own
    /// vehicle detector.
    pub fn analyse(
        &mut self,
        models: &mut Models,
        frame: Frame,
    ) -> Result<Analysed, AnalysisError> {
        self.analyse_through(models, frame, &mut OwnDetector)
    }

    /// As [`Analyzer::analyse`], the vehicle detector run by `stage` (one shared by many
    /// cameras, say); the rest of the models are the lent ones.
    pub fn analyse_through(
        &mut self,
        models: &mut Models,
        frame: Frame,
        stage: &mut dyn VehicleStage,
    ) -> Result<Analysed, AnalysisError> {
        let scene = Scene {
            tracker: &self.tracker,
            rules: &self.rules,
            last_pts: self.last_pts,
            last_index: self.last_index,
            needed: !self.pending.is_empty() || self.must_see(frame.pts),
            analysis_fps: self.camera.analysis_fps,
        };
        // The models serve several cameras: each is detected at its own scale.
        models.vehicle.set_fit(self.camera.detector_size);
        let look = self.schedule.look(&frame, &scene, &models.vehicle);
        let findings = match &look {
            Look::Skip => Vec::new(),
            Look::Coast => {
                // The signal is read on every frame that moved, or its change would be
                // seen a frame late and a red light's time misjudged.
                let signal = self.signal_at(&frame);
                self.rules.signal(frame.pts, signal);
                Vec::new()
            }
            Look::Whole | Look::Regions(_) => self.detect(models, stage, frame, &look)?,
        };
        Ok(Analysed { look, findings })
    }

    fn detect(
        &mut self,
        models: &mut Models,
        stage: &mut dyn VehicleStage,
        frame: Frame,
        look: &Look,
    ) -> Result<Vec<Finding>, AnalysisError> {
        if !self.checked_size {
            self.camera
                .check_frame_size(frame.image.width(), frame.image.height())?;
            self.camera.check_classes(&models.vehicle.classes)?;
            self.checked_size = true;
            // The detector's own confidence is what counts as a confident detection; the
            // tracker takes weaker boxes too, so a half-hidden vehicle extends its track.
            let confident = models
                .vehicle
                .confidence
                .max(self.tracker.settings.low_score);
            self.tracker.settings.high_score = confident;
            self.tracker.settings.new_track_score = confident;
            if self.rules.needs_heads() {
                // Now, not at the first motorbike: a missing head model is named at once.
                models.helmet()?;
            }
        }
        self.last_pts = Some(frame.pts);
        let image = match exposure::for_detection(&frame.image) {
            Some(brightened) => Arc::new(brightened),
            None => frame.image.clone(),
        };
        let regions = match look {
            Look::Regions(r) => Some(r.as_slice()),
            _ => None,
        };
        // The tracker takes weak boxes too; each camera is detected at its own scale.
        let ask = |region| DetectRequest {
            image: image.clone(),
            region,
            min_score: self.tracker.settings.low_score,
            fit: self.camera.detector_size,
        };
        let requests = match regions {
            Some(regions) => regions.iter().map(|r| ask(Some(*r))).collect(),
            None => vec![ask(None)],
        };
        let found = stage.detect(&mut models.vehicle, requests)?;
        let mut detections = match regions {
            Some(_) => models
                .vehicle
                .merge_regions(found.into_iter().flatten().collect()),
            None => found.into_iter().next().unwrap_or_default(),
        };
        if let Some(regions) = regions {
            // Outside the regions the picture is as it was on the last analysed frame, so
            // what was seen there is still there, where it was.
            let carried: Vec<Detection> = self
                .last_index
                .into_iter()
                .flat_map(|i| self.tracker.current(i))
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
        self.tracker
            .set_picture(frame.image.width(), frame.image.height());
        let ended = self.tracker.update(frame.index, frame.pts, &observations);
        tracing::trace!(camera = %self.camera.id, frame = frame.index, tracks = ?self.tracker.live().iter().map(|t| (t.id, format!("{:?}", t.state), t.last().frame, t.last().bbox.x1.round(), t.last().bbox.y1.round(), t.last().bbox.x2.round(), t.last().bbox.y2.round())).collect::<Vec<_>>(), "tracks");

        let keep = (self.settings.after_delay.as_secs_f64() * self.camera.analysis_fps as f64)
            .ceil() as usize
            // A crossing is confirmed a frame or two after the line is reached; its
            // "before" and "on" frames must still be here then.
            + 5;
        self.recent.push(frame.clone(), signal, keep);

        let current: Vec<Track> = self.tracker.current(frame.index).cloned().collect();
        for track in &current {
            self.crops.keep(track, &frame);
            let class = models.class_name(track.class_id());
            if self.rules.wants_head(track, &class)
                && let Some(head) = {
                    let riders_in_box = models.vehicle.joins_riders();
                    self.heads
                        .look(models.helmet()?, &frame.image, track, riders_in_box)?
                }
            {
                self.rules.head(track, head);
            }
            for violation in self.rules.observe(track, &class) {
                self.pending
                    .extend(Pending::start(violation, track, &self.recent));
            }
        }

        let mut done = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            let id = p.violation.track_id;
            let track = current.iter().find(|t| t.id == id);
            let ended_track = ended.iter().find(|t| t.id == id);
            if let Some(t) = track {
                p.see_after(frame.pts, self.settings.after_delay, t, &self.recent);
            }
            let after = p.violation.pts + self.settings.after_delay;
            let waited = frame.pts >= after + self.settings.plate_wait;
            let late_enough = frame.pts >= after && (self.crops.seen_whole(id) || waited);
            match (track, ended_track) {
                (Some(t), _) if late_enough => {
                    // A box away from the frame's edge may still be part of a vehicle that
                    // is coming in (the detector boxed what it saw): while the track lives
                    // and the wait lasts, a plate not read is tried again on a new view.
                    let kept = self.crops.kept(id);
                    if waited || p.plate_tried != Some(kept) {
                        let read = self.plate_of(models, id)?;
                        if read.is_some() || waited {
                            done.push(self.complete(models, p, t, read)?);
                        } else {
                            p.plate_tried = Some(kept);
                            self.pending.push(p);
                        }
                    } else {
                        self.pending.push(p);
                    }
                }
                (_, Some(t)) => {
                    let read = self.plate_of(models, id)?;
                    done.push(self.complete(models, p, t, read)?);
                }
                _ => self.pending.push(p),
            }
        }
        for t in &ended {
            self.sight(models, t)?;
        }
        // Crops of tracks that ended, or were dropped unconfirmed, go with them.
        let tracker = &self.tracker;
        let alive = |id: u64| tracker.get(id).is_some();
        self.crops.retain(&alive);
        self.heads.retain(&alive);
        self.rules.retain(&alive);
        self.sightings.retain(&alive, frame.pts);
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
                let read = self.plate_of(models, t.id)?;
                done.push(self.complete(models, p, t, read)?);
            }
        }
        for t in &tracks {
            self.sight(models, t)?;
        }
        self.crops.clear();
        self.heads.clear();
        self.sightings.forget_tracks();
        Ok(done)
    }

    /// Plates read off vehicles since the last call.
    pub fn take_sightings(&mut self) -> Vec<PlateSighting> {
        self.sightings.take()
    }

    /// Read the plate of a track that ended, unless a violation read it already. Two of
    /// its best crops are read (a violation reads all it kept): every vehicle passing
    /// costs this, so it is kept small.
    fn sight(&mut self, models: &mut Models, track: &Track) -> Result<(), AnalysisError> {
        if self.sightings.was_read(track.id) || !self.crops.has(track.id) {
            return Ok(());
        }
        if let Some(v) = self.crops.read(track.id, &mut models.plates, 2)? {
            self.sightings.add(PlateSighting {
                track_id: track.id,
                plate: v.read.plate.to_string(),
                confidence: v.confidence,
                vehicle_class: models.class_name(track.class_id()),
                colour: v.read.colour,
                pts: v.seen_at,
                first_seen: track.born,
                crop: v.vehicle,
            });
        }
        Ok(())
    }

    /// The track's plate, read from its best views so far.
    fn plate_of(
        &self,
        models: &mut Models,
        track_id: u64,
    ) -> Result<Option<plate_crops::VehicleRead>, ModelError> {
        self.crops
            .read(track_id, &mut models.plates, self.settings.plate_candidates)
    }

    fn complete(
        &mut self,
        models: &mut Models,
        p: Pending,
        track: &Track,
        read: Option<plate_crops::VehicleRead>,
    ) -> Result<Finding, AnalysisError> {
        let key_frames = p.key_frames(track, self.settings.after_delay, &self.recent);
        let vehicle_class = models.class_name(track.class_id());
        let head_crop = match p.violation.kind {
            vigil_core::ViolationKind::NoHelmet => self.heads.take(track.id),
            _ => None,
        };
        let (plate, plate_confidence, plate_crop, plate_candidates) = match read {
            Some(v) => {
                self.sightings.mark_read(track.id);
                self.sightings.add(PlateSighting {
                    track_id: track.id,
                    plate: v.read.plate.to_string(),
                    confidence: v.confidence,
                    vehicle_class: vehicle_class.clone(),
                    colour: v.read.colour,
                    pts: v.seen_at,
                    first_seen: track.born,
                    crop: v.vehicle,
                });
                let candidates = v
                    .candidates
                    .iter()
                    .map(|(p, c)| (p.to_string(), *c))
                    .collect();
                (Some(v.read), v.confidence, v.plate, candidates)
            }
            None => (None, 0.0, None, Vec::new()),
        };
        Ok(Finding {
            plate_colour: plate.as_ref().and_then(|p| p.colour),
            violation: p.violation,
            vehicle_class,
            key_frames,
            plate,
            plate_confidence,
            plate_candidates,
            plate_crop,
            head_crop,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}
