//! The plate's background colour, from the pixels of the read plate.
//!
//! Each pixel is put in a colour class by hue, saturation and value. The plate's
//! background is the class covering most of it: the characters are thin strokes, so even
//! the white characters on a blue or red plate cover less of it than the background does.

use image::RgbImage;

use vigil_core::PlateColour;

/// Least share of the plate's pixels its colour must cover; below it (dark, washed-out or
/// badly cropped plates) the colour is not told rather than guessed.
const MIN_SHARE: f32 = 0.3;

/// (hue in degrees, saturation 0..1, value 0..1)
fn hsv([r, g, b]: [u8; 3]) -> (f32, f32, f32) {
    let (r, g, b) = (r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let hue = if delta == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let sat = if max == 0.0 { 0.0 } else { delta / max };
    (hue, sat, max)
}

fn class_of(pixel: [u8; 3]) -> Option<PlateColour> {
    let (h, s, v) = hsv(pixel);
    if v < 0.25 {
        return None; // characters, shadow
    }
    if s < 0.25 {
        return (v > 0.5).then_some(PlateColour::White);
    }
    match h {
        h if !(20.0..340.0).contains(&h) => Some(PlateColour::Red),
        h if (35.0..75.0).contains(&h) => Some(PlateColour::Yellow),
        h if (190.0..260.0).contains(&h) => Some(PlateColour::Blue),
        _ => None,
    }
}

/// The background colour of a plate image (the crop of the plate alone), with the share
/// of pixels it covers; `None` when no colour covers enough of it.
pub fn plate_colour(plate: &RgbImage) -> Option<(PlateColour, f32)> {
    plate_colour_of(&[plate])
}

/// As [`plate_colour`], over the pieces of one plate (its lines).
pub fn plate_colour_of(pieces: &[&RgbImage]) -> Option<(PlateColour, f32)> {
    let total: f32 = pieces.iter().map(|p| (p.width() * p.height()) as f32).sum();
    if total == 0.0 {
        return None;
    }
    let mut counts = [0u32; 4];
    for p in pieces.iter().flat_map(|p| p.pixels()) {
        if let Some(c) = class_of(p.0) {
            counts[c as usize] += 1;
        }
    }
    let colours = [
        PlateColour::White,
        PlateColour::Yellow,
        PlateColour::Blue,
        PlateColour::Red,
    ];
    let (best, n) = colours.into_iter().zip(counts).max_by_key(|&(_, n)| n)?;
    let share = n as f32 / total;
    (share >= MIN_SHARE).then_some((best, share))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A plate of `background` with a block of "characters" of `ink` over 30 % of it, and
    /// some noise.
    fn plate(background: [u8; 3], ink: [u8; 3]) -> RgbImage {
        let mut seed = 7u32;
        RgbImage::from_fn(100, 30, |x, y| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let jitter = (seed >> 16) as i16 % 13 - 6;
            let base = if (x / 5) % 3 == 0 && (5..25).contains(&y) {
                ink
            } else {
                background
            };
            Rgb(base.map(|c| (c as i16 + jitter).clamp(0, 255) as u8))
        })
    }

    #[test]
    fn each_legal_colour_is_told_from_its_background_not_its_characters() {
        let black = [20, 20, 20];
        let white = [240, 240, 235];
        assert_eq!(
            plate_colour(&plate(white, black)).map(|c| c.0),
            Some(PlateColour::White)
        );
        assert_eq!(
            plate_colour(&plate([235, 190, 30], black)).map(|c| c.0),
            Some(PlateColour::Yellow)
        );
        assert_eq!(
            plate_colour(&plate([20, 60, 170], white)).map(|c| c.0),
            Some(PlateColour::Blue)
        );
        assert_eq!(
            plate_colour(&plate([200, 25, 30], white)).map(|c| c.0),
            Some(PlateColour::Red)
        );
        // NG (diplomatic) plates: white with red characters are white plates.
        assert_eq!(
            plate_colour(&plate(white, [200, 25, 30])).map(|c| c.0),
            Some(PlateColour::White)
        );
    }

    #[test]
    fn a_plate_too_dark_to_tell_gets_no_colour() {
        assert_eq!(plate_colour(&plate([40, 40, 45], [10, 10, 10])), None);
        assert_eq!(plate_colour(&RgbImage::new(0, 0)), None);
    }
}
