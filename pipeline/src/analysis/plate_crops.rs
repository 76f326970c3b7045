//! Plates: the best views of each tracked vehicle kept as crops, read and voted on when a
//! violation needs its plate or the track ends, and every read kept as a sighting (one a
//! passage).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use image::RgbImage;
use vigil_core::PlateColour;
use vigil_models::{BBox, ModelError};

use super::tracker::Track;
use crate::frame::Frame;
use crate::plates::{PlateRead, PlateReader, fuse};

/// Reads of one plate at one camera this close together (stream time) are one passage.
const SIGHTING_MERGE: Duration = Duration::from_secs(10);

/// A vehicle crop kept as a candidate for plate reading.
struct Crop {
    quality: f32,
    pts: Duration,
    /// The whole vehicle is in the picture (not cut by the frame's edge).
    whole: bool,
    image: RgbImage,
}

/// A vehicle's plate, fused across its crops.
pub(crate) struct VehicleRead {
    /// The read that gave the fused plate most confidence, carrying the fused plate.
    pub read: PlateRead,
    /// The fused confidence (see [`crate::plates::Fused`]).
    pub confidence: f32,
    /// The other plates the reads point to, likeliest first.
    pub candidates: Vec<(vigil_core::plate::Plate, f32)>,
    /// The plate, cut from the crop the winning read came from.
    pub plate: Option<RgbImage>,
    /// When that crop was taken, and the vehicle as it shows.
    pub seen_at: Duration,
    pub vehicle: RgbImage,
}

/// Each live track's best crops.
pub(crate) struct PlateCrops {
    by_track: HashMap<u64, Vec<Crop>>,
    /// Per track, how many views have been kept among its best so far.
    kept: HashMap<u64, u64>,
    limit: usize,
}

impl PlateCrops {
    pub fn new(limit: usize) -> Self {
        Self {
            by_track: HashMap::new(),
            kept: HashMap::new(),
            limit,
        }
    }

    /// Keep the track's latest view if it is among its `limit` best: large, confident and
    /// whole in the frame.
    pub fn keep(&mut self, track: &Track, frame: &Frame) {
        let p = track.last();
        let (w, h) = frame.image.dimensions();
        // A box cut by the frame edge hides part of the vehicle, maybe its plate.
        let inside = p.bbox.x1 > 2.0
            && p.bbox.y1 > 2.0
            && p.bbox.x2 < w as f32 - 2.0
            && p.bbox.y2 < h as f32 - 2.0;
        let quality = p.score * p.bbox.area() * if inside { 1.0 } else { 0.25 };
        let crops = self.by_track.entry(track.id).or_default();
        if crops.len() >= self.limit && crops.iter().all(|c| c.quality >= quality) {
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
        crops.truncate(self.limit);
        *self.kept.entry(track.id).or_default() += 1;
    }

    /// How many views of the track have been kept among its best: a plate not read from
    /// them is worth trying again only once this changes.
    pub fn kept(&self, track_id: u64) -> u64 {
        self.kept.get(&track_id).copied().unwrap_or(0)
    }

    /// Whether the vehicle was ever seen whole.
    pub fn seen_whole(&self, track_id: u64) -> bool {
        self.by_track
            .get(&track_id)
            .is_some_and(|c| c.iter().any(|c| c.whole))
    }

    pub fn has(&self, track_id: u64) -> bool {
        self.by_track.contains_key(&track_id)
    }

    /// Read the plate from the track's `at_most` best crops and fuse the reads.
    pub fn read(
        &self,
        track_id: u64,
        reader: &mut PlateReader,
        at_most: usize,
    ) -> Result<Option<VehicleRead>, ModelError> {
        let crops = self
            .by_track
            .get(&track_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut reads: Vec<(PlateRead, &Crop)> = Vec::new();
        for crop in crops.iter().take(at_most) {
            if let Some(read) = reader.read(&crop.image)? {
                reads.push((read, crop));
            }
        }
        tracing::debug!(
            track = track_id,
            crops = crops.len(),
            reads = ?reads.iter().map(|(r, _)| (r.plate.to_string(), r.confidence)).collect::<Vec<_>>(),
            "plate reads"
        );
        let only: Vec<PlateRead> = reads.iter().map(|(r, _)| r.clone()).collect();
        let Some(fused) = fuse(&only) else {
            return Ok(None);
        };
        let (read, crop) = &reads[fused.best];
        let read = PlateRead {
            plate: fused.plate,
            ..read.clone()
        };
        let plate = read
            .bbox
            .pixel_rect(crop.image.width(), crop.image.height())
            .map(|(x, y, w, h)| image::imageops::crop_imm(&crop.image, x, y, w, h).to_image());
        Ok(Some(VehicleRead {
            read,
            confidence: fused.confidence,
            candidates: fused.candidates,
            plate,
            seen_at: crop.pts,
            vehicle: crop.image.clone(),
        }))
    }

    pub fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.by_track.retain(|id, _| alive(*id));
        self.kept.retain(|id, _| alive(*id));
    }

    pub fn clear(&mut self) {
        self.by_track.clear();
        self.kept.clear();
    }
}

/// A plate read off a vehicle that passed, violation or not (investigators search them).
#[derive(Debug, Clone)]
pub struct PlateSighting {
    pub track_id: u64,
    pub plate: String,
    pub confidence: f32,
    pub vehicle_class: String,
    pub colour: Option<PlateColour>,
    /// When the vehicle was seen best (its crop's frame).
    pub pts: Duration,
    /// When its track began: which segment of a recording the passage belongs to.
    pub first_seen: Duration,
    /// The vehicle, as read.
    pub crop: RgbImage,
}

/// The plates read here: kept until taken, one per passage.
#[derive(Default)]
pub(crate) struct Sightings {
    waiting: Vec<PlateSighting>,
    /// Tracks whose plate a violation already read.
    read: HashSet<u64>,
    /// When each plate was last read here (stream time).
    sighted: HashMap<String, Duration>,
}

impl Sightings {
    pub fn was_read(&self, track_id: u64) -> bool {
        self.read.contains(&track_id)
    }

    pub fn mark_read(&mut self, track_id: u64) {
        self.read.insert(track_id);
    }

    /// Keep a plate read as a sighting, unless the same plate was read here within
    /// [`SIGHTING_MERGE`]: then it is the same passage seen by a second track (a track
    /// broken behind another vehicle, or a box that took in two), and one row per passage
    /// is what an investigator wants.
    pub fn add(&mut self, sighting: PlateSighting) {
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
        self.waiting.push(sighting);
    }

    pub fn take(&mut self) -> Vec<PlateSighting> {
        std::mem::take(&mut self.waiting)
    }

    /// Forget tracks that ended, and plates not read for long. A read's time is when its
    /// vehicle was seen best, which may be well before its track ends: plates are
    /// forgotten only long after.
    pub fn retain(&mut self, alive: &dyn Fn(u64) -> bool, now: Duration) {
        self.read.retain(|id| alive(*id));
        self.sighted
            .retain(|_, last| now.saturating_sub(*last) <= SIGHTING_MERGE * 30);
    }

    pub fn forget_tracks(&mut self) {
        self.read.clear();
    }
}
