//! Looks at riders' heads for the no-helmet rule: the rider's region of a tracked
//! two-wheeler is cut out of the frame and the head model run on that alone (it takes any
//! bare head for a violation, so it never sees the rest of the street); the best bare
//! head of each track is kept for the evidence.

use std::collections::HashMap;

use image::RgbImage;
use vigil_models::{BBox, Detector, ModelError};

use super::tracker::Track;
use crate::rules::helmet::{Head, rider_head, rider_region};

/// The head model's class for a bare head, by its name in the model manifest.
pub const BARE: &str = "no_helmet";

/// How much wider and taller than the head the evidence's crop is: the face and what
/// is around the head (hair, a cap, a helmet's strap) are what a reviewer judges by.
const CROP_GROWTH: f32 = 1.8;

#[derive(Default)]
pub struct Heads {
    /// Per track: the best bare head's score and its crop.
    best: HashMap<u64, (f32, RgbImage)>,
}

impl Heads {
    /// Look at the rider of `track` at its latest point: the head model runs on the rider's
    /// region of `image`, lifted by that region's own brightness when it is dark (a head
    /// under a street lamp and one in shadow are each lifted as they need, not by the
    /// frame's mean); the evidence crop is cut as recorded. `None`: the rider cannot be
    /// looked at here (the vehicle is cut by the picture's edge), which is no look at
    /// all; `Some(None)`: a look that found no head.
    pub fn look(
        &mut self,
        model: &mut Detector,
        image: &RgbImage,
        track: &Track,
        riders_in_box: bool,
    ) -> Result<Option<Option<Head>>, ModelError> {
        let bare_class = model
            .classes
            .iter()
            .position(|c| c == BARE)
            .ok_or_else(|| ModelError::Mismatch {
                path: model.path().to_owned(),
                role: super::Models::HELMET.into(),
                message: format!("its `classes` have no `{BARE}`"),
            })?;
        let vehicle = track.last().bbox;
        let Some(region) = rider_region(vehicle, image.width(), image.height(), riders_in_box)
        else {
            return Ok(None);
        };
        let (x, y) = (region.x1 as u32, region.y1 as u32);
        let (w, h) = (region.width() as u32, region.height() as u32);
        let crop = image::imageops::crop_imm(image, x, y, w, h).to_image();
        let crop = super::exposure::for_detection(&crop).unwrap_or(crop);
        let (ox, oy) = (x as f32, y as f32);
        let heads = model.detect(&crop)?.into_iter().map(|d| Head {
            bbox: BBox::new(
                d.bbox.x1 + ox,
                d.bbox.y1 + oy,
                d.bbox.x2 + ox,
                d.bbox.y2 + oy,
            ),
            bare: d.class_id == bare_class,
            score: d.score,
        });
        let head = rider_head(vehicle, heads);
        if let Some(h) = head.filter(|h| h.bare)
            && self.best.get(&track.id).is_none_or(|(s, _)| h.score > *s)
        {
            self.best.insert(track.id, (h.score, cut(image, h.bbox)));
        }
        tracing::trace!(track = track.id, ?head, "head");
        Ok(Some(head))
    }

    /// The best bare head's crop of a track, for its violation's evidence.
    pub fn take(&mut self, track_id: u64) -> Option<RgbImage> {
        self.best.remove(&track_id).map(|(_, crop)| crop)
    }

    pub fn retain(&mut self, alive: &dyn Fn(u64) -> bool) {
        self.best.retain(|id, _| alive(*id));
    }

    pub fn clear(&mut self) {
        self.best.clear();
    }
}

/// The head grown by [`CROP_GROWTH`] about its centre, clamped to the picture.
fn cut(image: &RgbImage, head: BBox) -> RgbImage {
    let (cx, cy) = head.center();
    let (hw, hh) = (
        head.width() * CROP_GROWTH / 2.0,
        head.height() * CROP_GROWTH / 2.0,
    );
    let b = BBox::new(cx - hw, cy - hh, cx + hw, cy + hh).clamp(image.width(), image.height());
    let (x, y) = (b.x1 as u32, b.y1 as u32);
    let (w, h) = ((b.width() as u32).max(1), (b.height() as u32).max(1));
    image::imageops::crop_imm(image, x, y, w, h).to_image()
}
