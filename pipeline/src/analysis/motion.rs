//! Motion gating: the detector is the expensive stage, and most of a junction camera's
//! frames show nothing moving (an empty road at night, a queue at red), or something
//! moving in a small part of the picture. A frame is worth detecting only where enough of
//! a small grey thumbnail changed since the last frame that was detected.

use image::imageops::{FilterType, resize};
use image::{GrayImage, RgbImage};
use vigil_models::Region;

const THUMB_W: u32 = 96;
const THUMB_H: u32 = 54;

pub struct MotionGate {
    previous: Option<GrayImage>,
    /// The reference `changed` last replaced, for [`MotionGate::revert`].
    replaced: Option<GrayImage>,
    /// Grey-level change that counts a thumbnail pixel as changed.
    pixel_threshold: u8,
    /// Share of thumbnail pixels that must change.
    min_fraction: f32,
}

impl Default for MotionGate {
    fn default() -> Self {
        Self {
            previous: None,
            replaced: None,
            pixel_threshold: 18,
            min_fraction: 0.002,
        }
    }
}

impl MotionGate {
    /// Whether `image` differs enough from the last frame passed on. A frame that passes
    /// becomes the new reference; a frame that does not is compared against the same one,
    /// so slow movement still adds up to a change.
    pub fn moved(&mut self, image: &RgbImage) -> bool {
        self.changed(image).is_some()
    }

    /// As [`MotionGate::moved`], with where: one rectangle, in `image`'s pixels, per
    /// cluster of changed thumbnail cells (cells up to [`JOIN_CELLS`] apart are one
    /// cluster); the whole frame for the first one. Outside them the picture is the same
    /// as on the last frame passed on.
    pub fn changed(&mut self, image: &RgbImage) -> Option<Vec<Region>> {
        let small = thumbnail(image);
        let whole = Region {
            x: 0,
            y: 0,
            width: image.width(),
            height: image.height(),
        };
        let Some(prev) = &self.previous else {
            self.previous = Some(small);
            return Some(vec![whole]);
        };
        let changed: Vec<bool> = prev
            .pixels()
            .zip(small.pixels())
            .map(|(a, b)| a.0[0].abs_diff(b.0[0]) >= self.pixel_threshold)
            .collect();
        let count = changed.iter().filter(|c| **c).count();
        if (count as f32) < (THUMB_W * THUMB_H) as f32 * self.min_fraction {
            return None;
        }
        self.replaced = self.previous.replace(small);
        // Each thumbnail cell covers a block of frame pixels; a changed cell's whole block
        // is in the region.
        let (sx, sy) = (
            image.width() as f32 / THUMB_W as f32,
            image.height() as f32 / THUMB_H as f32,
        );
        Some(
            clusters(&changed)
                .into_iter()
                .map(|(x0, y0, x1, y1)| {
                    let fx0 = (x0 as f32 * sx).floor() as u32;
                    let fy0 = (y0 as f32 * sy).floor() as u32;
                    let fx1 = (((x1 + 1) as f32 * sx).ceil() as u32).min(image.width());
                    let fy1 = (((y1 + 1) as f32 * sy).ceil() as u32).min(image.height());
                    Region {
                        x: fx0,
                        y: fy0,
                        width: fx1.saturating_sub(fx0).max(1),
                        height: fy1.saturating_sub(fy0).max(1),
                    }
                })
                .collect(),
        )
    }

    /// The frame `changed` last passed on was not detected in after all (the analysis
    /// followed its vehicles without looking): the reference goes back to the frame before,
    /// so the next change found covers everything that moved since the last detection.
    pub fn revert(&mut self) {
        if let Some(before) = self.replaced.take() {
            self.previous = Some(before);
        }
    }

    /// `image` was analysed whole whatever moved: it is the new reference.
    pub fn rebase(&mut self, image: &RgbImage) {
        self.replaced = None;
        self.previous = Some(thumbnail(image));
    }

    pub fn reset(&mut self) {
        self.previous = None;
        self.replaced = None;
    }
}

/// Changed cells this many cells apart or closer belong to one cluster: a vehicle of one
/// colour changes only along its edges, which must still make one region.
pub const JOIN_CELLS: i32 = 3;

/// The bounding boxes (thumbnail cells, inclusive) of the clusters of changed cells.
fn clusters(changed: &[bool]) -> Vec<(u32, u32, u32, u32)> {
    let (w, h) = (THUMB_W as i32, THUMB_H as i32);
    let mut seen = vec![false; changed.len()];
    let mut found = Vec::new();
    for start in 0..changed.len() {
        if !changed[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i as i32) % w, (i as i32) / w);
            (x0, y0) = (x0.min(x as u32), y0.min(y as u32));
            (x1, y1) = (x1.max(x as u32), y1.max(y as u32));
            for dy in -JOIN_CELLS..=JOIN_CELLS {
                for dx in -JOIN_CELLS..=JOIN_CELLS {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w || ny >= h {
                        continue;
                    }
                    let j = (ny * w + nx) as usize;
                    if changed[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        found.push((x0, y0, x1, y1));
    }
    found
}

/// The mean grey level of each thumbnail cell's block of frame pixels, in one pass over
/// the frame: a full-size grey copy and a filtered resize cost several times as much, and
/// this runs on every analysis frame of every camera.
fn thumbnail(image: &RgbImage) -> GrayImage {
    let (w, h) = image.dimensions();
    if w < THUMB_W || h < THUMB_H {
        let grey = image::imageops::grayscale(image);
        return resize(&grey, THUMB_W, THUMB_H, FilterType::Triangle);
    }
    let cell_of = |v: u32, size: u32, cells: u32| (v as u64 * cells as u64 / size as u64) as usize;
    let column: Vec<usize> = (0..w).map(|x| cell_of(x, w, THUMB_W)).collect();
    // How many frame columns and rows fall in each cell: a block's pixel count.
    let mut widths = vec![0u32; THUMB_W as usize];
    column.iter().for_each(|&c| widths[c] += 1);
    let mut heights = vec![0u32; THUMB_H as usize];
    (0..h).for_each(|y| heights[cell_of(y, h, THUMB_H)] += 1);
    let mut sums = vec![0u32; (THUMB_W * THUMB_H) as usize];
    for (y, row) in image.rows().enumerate() {
        let cells = cell_of(y as u32, h, THUMB_H) * THUMB_W as usize;
        for (px, &cx) in row.zip(&column) {
            let [r, g, b] = px.0;
            // Rec. 601 luma in 8-bit fixed point, as `grayscale` weighs it.
            sums[cells + cx] += 77 * r as u32 + 150 * g as u32 + 29 * b as u32;
        }
    }
    GrayImage::from_fn(THUMB_W, THUMB_H, |x, y| {
        let i = (y * THUMB_W + x) as usize;
        let count = widths[x as usize] * heights[y as usize];
        image::Luma([(sums[i] / (count.max(1) * 256)) as u8])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn a_still_scene_is_skipped_and_a_moving_block_is_not() {
        let mut gate = MotionGate::default();
        let mut frame = RgbImage::from_pixel(640, 360, Rgb([90, 90, 90]));
        assert!(gate.moved(&frame), "the first frame is always analysed");
        assert!(!gate.moved(&frame));
        // Sensor noise of a grey level or two is not motion.
        for p in frame.pixels_mut().step_by(7) {
            p.0[0] += 2;
        }
        assert!(!gate.moved(&frame));
        // A vehicle-sized block appearing is.
        for y in 100..160 {
            for x in 200..300 {
                frame.put_pixel(x, y, Rgb([235, 235, 220]));
            }
        }
        assert!(gate.moved(&frame));
        assert!(!gate.moved(&frame));
    }

    #[test]
    fn the_changed_region_covers_the_moving_block_and_little_else() {
        let mut gate = MotionGate::default();
        let mut frame = RgbImage::from_pixel(640, 360, Rgb([90, 90, 90]));
        let first = gate.changed(&frame).expect("the first frame is analysed");
        assert_eq!((first[0].width, first[0].height), (640, 360));
        for y in 100..160 {
            for x in 200..300 {
                frame.put_pixel(x, y, Rgb([235, 235, 220]));
            }
        }
        let found = gate.changed(&frame).expect("a block appeared");
        assert_eq!(found.len(), 1, "{found:?}");
        let r = found[0];
        assert!(r.x <= 200 && r.y <= 100, "{r:?}");
        assert!(r.x + r.width >= 300 && r.y + r.height >= 160, "{r:?}");
        // A cell the block's edge falls in counts whole: a cell or two, no more.
        assert!(r.x >= 180 && r.y >= 80, "{r:?}");
        assert!(r.x + r.width <= 320 && r.y + r.height <= 180, "{r:?}");

        // Reverted, the next frame is compared with the one before the block appeared.
        gate.revert();
        let again = gate
            .changed(&frame)
            .expect("still changed from the reference");
        assert_eq!(again, found);

        // After a whole-frame look, only what changes from then on counts.
        gate.rebase(&frame);
        assert_eq!(gate.changed(&frame), None);

        // Two vehicles far apart are two regions, not one rectangle of empty road.
        for y in 250..330 {
            for x in 20..120 {
                frame.put_pixel(x, y, Rgb([30, 30, 40]));
            }
            for x in 480..600 {
                frame.put_pixel(x, y, Rgb([250, 240, 120]));
            }
        }
        let mut two = gate.changed(&frame).expect("two blocks appeared");
        two.sort_by_key(|r| r.x);
        assert_eq!(two.len(), 2, "{two:?}");
        assert!(two[0].x <= 20 && two[0].x + two[0].width >= 120, "{two:?}");
        assert!(two[1].x <= 480 && two[1].x + two[1].width >= 600, "{two:?}");
        assert!(two[0].x + two[0].width < two[1].x, "{two:?}");
    }
}
