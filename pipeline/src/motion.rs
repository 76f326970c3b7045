//! Motion gating: the detector is the expensive stage, and most of a junction camera's
//! frames show nothing moving (an empty road at night, a queue at red). A frame is worth
//! detecting only if enough of a small grey thumbnail changed since the last frame that
//! was detected.

use image::imageops::{FilterType, resize};
use image::{GrayImage, RgbImage};

pub struct MotionGate {
    previous: Option<GrayImage>,
    /// Grey-level change that counts a thumbnail pixel as changed.
    pixel_threshold: u8,
    /// Share of thumbnail pixels that must change.
    min_fraction: f32,
}

impl Default for MotionGate {
    fn default() -> Self {
        Self {
            previous: None,
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
        let grey = image::imageops::grayscale(image);
        let small = resize(&grey, 96, 54, FilterType::Triangle);
        let Some(prev) = &self.previous else {
            self.previous = Some(small);
            return true;
        };
        let changed = prev
            .pixels()
            .zip(small.pixels())
            .filter(|(a, b)| a.0[0].abs_diff(b.0[0]) >= self.pixel_threshold)
            .count();
        let moved = changed as f32 / (96.0 * 54.0) >= self.min_fraction;
        if moved {
            self.previous = Some(small);
        }
        moved
    }

    pub fn reset(&mut self) {
        self.previous = None;
    }
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
}
