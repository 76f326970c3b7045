//! Regions of a frame the detector may be run on alone (motion gating).

use image::RgbImage;

use crate::geometry::BBox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// The part of this region inside a `width` x `height` frame (at least a pixel).
    pub fn within(self, width: u32, height: u32) -> Region {
        let x = self.x.min(width.saturating_sub(1));
        let y = self.y.min(height.saturating_sub(1));
        Region {
            x,
            y,
            width: self.width.min(width - x).max(1),
            height: self.height.min(height - y).max(1),
        }
    }

    pub(super) fn is_whole(self, image: &RgbImage) -> bool {
        self.x == 0 && self.y == 0 && self.width >= image.width() && self.height >= image.height()
    }

    pub fn area(self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// This region grown by `margin` on every side, kept inside a `width` x `height`
    /// frame.
    pub fn grown(self, margin: u32, width: u32, height: u32) -> Region {
        let x = self.x.saturating_sub(margin);
        let y = self.y.saturating_sub(margin);
        let x2 = (self.x + self.width + margin).min(width);
        let y2 = (self.y + self.height + margin).min(height);
        Region {
            x,
            y,
            width: x2.saturating_sub(x).max(1),
            height: y2.saturating_sub(y).max(1),
        }
    }

    /// This region grown about its centre to at least `min_width` x `min_height`, moved
    /// back inside a `width` x `height` frame (and no larger than it).
    pub fn at_least(self, min_width: u32, min_height: u32, width: u32, height: u32) -> Region {
        let r = self.within(width, height);
        let grow = |start: u32, len: u32, min: u32, limit: u32| -> (u32, u32) {
            let len2 = len.max(min).min(limit);
            let centre = start + len / 2;
            let start2 = centre.saturating_sub(len2 / 2).min(limit - len2);
            (start2, len2)
        };
        let (x, w) = grow(r.x, r.width, min_width, width.max(1));
        let (y, h) = grow(r.y, r.height, min_height, height.max(1));
        Region {
            x,
            y,
            width: w,
            height: h,
        }
    }

    /// The smallest region holding both.
    pub fn union(self, other: Region) -> Region {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let x2 = (self.x + self.width).max(other.x + other.width);
        let y2 = (self.y + self.height).max(other.y + other.height);
        Region {
            x,
            y,
            width: x2 - x,
            height: y2 - y,
        }
    }

    /// The pixels a box covers, as a region.
    pub fn around(b: BBox) -> Region {
        let x = b.x1.max(0.0).floor() as u32;
        let y = b.y1.max(0.0).floor() as u32;
        let x2 = b.x2.max(0.0).ceil() as u32;
        let y2 = b.y2.max(0.0).ceil() as u32;
        Region {
            x,
            y,
            width: x2.saturating_sub(x).max(1),
            height: y2.saturating_sub(y).max(1),
        }
    }

    pub fn as_bbox(self) -> BBox {
        BBox::new(
            self.x as f32,
            self.y as f32,
            (self.x + self.width) as f32,
            (self.y + self.height) as f32,
        )
    }

    pub fn overlaps(self, b: BBox) -> bool {
        b.x1 < (self.x + self.width) as f32
            && b.x2 > self.x as f32
            && b.y1 < (self.y + self.height) as f32
            && b.y2 > self.y as f32
    }

    pub fn contains(self, b: BBox) -> bool {
        b.x1 >= self.x as f32
            && b.y1 >= self.y as f32
            && b.x2 <= (self.x + self.width) as f32
            && b.y2 <= (self.y + self.height) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_grows_about_its_centre_to_a_models_input_within_the_frame() {
        let r = Region {
            x: 300,
            y: 100,
            width: 60,
            height: 40,
        };
        // A 416 input on a 640x360 frame: as wide as the input, as tall as the frame.
        assert_eq!(
            r.at_least(416, 416, 640, 360),
            Region {
                x: 122,
                y: 0,
                width: 416,
                height: 360
            }
        );
        // Near the edge it is moved back inside rather than cut.
        let edge = Region { x: 600, ..r };
        assert_eq!(edge.at_least(416, 416, 640, 360).x, 224);
        // Already large enough: unchanged.
        let big = Region {
            x: 10,
            y: 10,
            width: 500,
            height: 300,
        };
        assert_eq!(big.at_least(416, 200, 640, 360), big);
    }

    #[test]
    fn regions_grow_join_and_stay_in_the_frame() {
        let r = Region {
            x: 10,
            y: 20,
            width: 50,
            height: 40,
        };
        assert_eq!(
            r.grown(32, 80, 70),
            Region {
                x: 0,
                y: 0,
                width: 80,
                height: 70
            }
        );
        let b = Region::around(BBox::new(100.2, 30.0, 119.5, 49.9));
        assert_eq!((b.x, b.y, b.width, b.height), (100, 30, 20, 20));
        let u = r.union(b);
        assert_eq!((u.x, u.y, u.width, u.height), (10, 20, 110, 40));
        assert!(r.overlaps(BBox::new(55.0, 55.0, 90.0, 90.0)));
        assert!(
            !r.overlaps(BBox::new(60.0, 20.0, 90.0, 30.0)),
            "touching is not overlapping"
        );
        assert!(r.contains(BBox::new(10.0, 20.0, 60.0, 60.0)));
        assert!(!r.contains(BBox::new(10.0, 20.0, 60.5, 60.0)));
        let inside = Region {
            x: 630,
            y: 350,
            width: 100,
            height: 100,
        }
        .within(640, 360);
        assert_eq!((inside.width, inside.height), (10, 10));
    }
}
