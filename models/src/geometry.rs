use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixel coordinates, `x1,y1` top-left and `x2,y2` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// The area both boxes cover.
    pub fn intersection(&self, other: &BBox) -> f32 {
        BBox::new(
            self.x1.max(other.x1),
            self.y1.max(other.y1),
            self.x2.min(other.x2),
            self.y2.min(other.y2),
        )
        .area()
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// Clamp to an image of `width` x `height`.
    pub fn clamp(&self, width: u32, height: u32) -> BBox {
        let (w, h) = (width as f32, height as f32);
        BBox::new(
            self.x1.clamp(0.0, w),
            self.y1.clamp(0.0, h),
            self.x2.clamp(0.0, w),
            self.y2.clamp(0.0, h),
        )
    }

    /// Integer pixel rectangle `(x, y, w, h)` inside a `width` x `height` image, or `None` if empty.
    pub fn pixel_rect(&self, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        let c = self.clamp(width, height);
        let (x, y) = (c.x1.floor() as u32, c.y1.floor() as u32);
        let (x2, y2) = (c.x2.ceil() as u32, c.y2.ceil() as u32);
        (x2 > x && y2 > y).then(|| (x, y, x2 - x, y2 - y))
    }
}

/// Greedy non-maximum suppression per class; returns the kept indices, best first.
pub fn nms(boxes: &[BBox], scores: &[f32], classes: &[usize], iou_threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep
            .iter()
            .all(|&k| classes[k] != classes[i] || boxes[k].iou(&boxes[i]) <= iou_threshold)
        {
            keep.push(i);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn nms_suppresses_overlaps_of_the_same_class_only() {
        let boxes = [
            BBox::new(0.0, 0.0, 10.0, 10.0),
            BBox::new(1.0, 0.0, 11.0, 10.0),
            BBox::new(1.0, 0.0, 11.0, 10.0),
            BBox::new(50.0, 50.0, 60.0, 60.0),
        ];
        let keep = nms(&boxes, &[0.9, 0.8, 0.7, 0.6], &[0, 0, 1, 0], 0.5);
        assert_eq!(keep, vec![0, 2, 3]);
    }

    #[test]
    fn pixel_rect_clamps_to_the_image() {
        let b = BBox::new(-5.0, 10.2, 700.0, 20.0);
        assert_eq!(b.pixel_rect(640, 360), Some((0, 10, 640, 10)));
        assert_eq!(BBox::new(700.0, 0.0, 800.0, 5.0).pixel_rect(640, 360), None);
    }
}
