//! Brightening dark frames for the detector. Night frames from cameras without enough
//! light leave vehicles too dim for a detector trained on daylight photographs; a gamma
//! curve that lifts the frame's mean to mid-grey recovers them. Only the detector's input
//! is changed: evidence keeps the frame as the camera recorded it.

use image::RgbImage;

/// Frames whose mean brightness is under this are brightened.
const DARK_MEAN: f32 = 70.0;
/// The brightness the frame's mean is lifted to.
const TARGET_MEAN: f32 = 115.0;

/// Mean brightness (0..255) over a sample of the frame's pixels.
fn mean_brightness(image: &RgbImage) -> f32 {
    let (w, h) = image.dimensions();
    let (mut sum, mut n) = (0.0f32, 0u32);
    for y in (0..h).step_by(4) {
        for x in (0..w).step_by(4) {
            let [r, g, b] = image.get_pixel(x, y).0;
            sum += 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32;
            n += 1;
        }
    }
    if n == 0 { 255.0 } else { sum / n as f32 }
}

/// The frame brightened for detection, or `None` when it is bright enough as it is.
pub fn for_detection(image: &RgbImage) -> Option<RgbImage> {
    let mean = mean_brightness(image);
    if !(1.0..DARK_MEAN).contains(&mean) {
        return None;
    }
    // (mean/255)^gamma = target/255
    let gamma = (TARGET_MEAN / 255.0).ln() / (mean / 255.0).ln();
    let lut: Vec<u8> = (0..=255u16)
        .map(|v| {
            (255.0 * (v as f32 / 255.0).powf(gamma))
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    let mut out = image.clone();
    for p in out.pixels_mut() {
        p.0 = p.0.map(|c| lut[c as usize]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn dark_frames_are_lifted_and_bright_ones_left_alone() {
        let dark = RgbImage::from_fn(64, 36, |x, _| Rgb([(20 + x) as u8, 25, 30]));
        let lifted = for_detection(&dark).expect("dark");
        let m = mean_brightness(&lifted);
        assert!((m - TARGET_MEAN).abs() < 12.0, "{m}");
        // Order is kept: a brighter pixel stays brighter.
        assert!(lifted.get_pixel(40, 0).0[0] > lifted.get_pixel(10, 0).0[0]);
        let day = RgbImage::from_pixel(64, 36, Rgb([120, 120, 120]));
        assert!(for_detection(&day).is_none());
        assert!(
            for_detection(&RgbImage::new(64, 36)).is_none(),
            "a black frame has nothing to lift"
        );
    }
}
