//! Plane geometry in image pixels, shared by the rules.

use std::time::Duration;

use vigil_models::BBox;

use crate::analysis::tracker::TrackPoint;

pub type Point = (f32, f32);

/// Where the vehicle touches the road: the bottom centre of its box. Zones and lines
/// painted on the road are judged by it, not by the box, which also covers the body
/// standing above other lanes.
pub fn ground(b: &BBox) -> Point {
    ((b.x1 + b.x2) / 2.0, b.y2)
}

/// Whether (x, y) is inside the polygon (even-odd rule).
pub fn inside(polygon: &[[f32; 2]], (x, y): Point) -> bool {
    let mut result = false;
    let n = polygon.len();
    for i in 0..n {
        let [xi, yi] = polygon[i];
        let [xj, yj] = polygon[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            result = !result;
        }
    }
    result
}

pub fn distance(a: Point, b: Point) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

pub fn unit([dx, dy]: [f32; 2]) -> Point {
    let len = (dx * dx + dy * dy).sqrt();
    (dx / len, dy / len)
}

pub fn dot(a: Point, b: Point) -> f32 {
    a.0 * b.0 + a.1 * b.1
}

/// A directed segment. Facing from `a` to `b` in image coordinates (y down), points on
/// the right have a positive distance, on the left a negative one.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub a: Point,
    pub b: Point,
}

impl Segment {
    pub fn new([ax, ay]: [f32; 2], [bx, by]: [f32; 2]) -> Self {
        Self {
            a: (ax, ay),
            b: (bx, by),
        }
    }

    fn length(&self) -> f32 {
        distance(self.a, self.b)
    }

    /// Signed distance of `p` from the segment's line, and where along the segment it
    /// falls (0 at `a`, 1 at `b`).
    pub fn locate(&self, p: Point) -> (f32, f32) {
        let len = self.length();
        let (ux, uy) = ((self.b.0 - self.a.0) / len, (self.b.1 - self.a.1) / len);
        let (px, py) = (p.0 - self.a.0, p.1 - self.a.1);
        (ux * py - uy * px, (px * ux + py * uy) / len)
    }

    /// Signed distance of `p` from the segment, when `p` lies beside it (its foot on the
    /// segment, `slack` as a share of the length allowed beyond each end).
    pub fn beside(&self, p: Point, slack: f32) -> Option<f32> {
        let (d, along) = self.locate(p);
        (-slack..=1.0 + slack).contains(&along).then_some(d)
    }
}

/// When a point moving from `prev` (signed distance `d0`) to `next` (`d1`) met the line:
/// interpolated, so frames between detections do not make the time late.
pub fn crossing_time(prev: &TrackPoint, d0: f32, next: &TrackPoint, d1: f32) -> Duration {
    let fraction = if d1 == d0 {
        1.0
    } else {
        (d0 / (d0 - d1)).clamp(0.0, 1.0) as f64
    };
    prev.pts + next.pts.saturating_sub(prev.pts).mul_f64(fraction)
}

/// A shape a rule judges by: a line painted on the road (open) or an area (closed).
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub points: Vec<[f32; 2]>,
    pub closed: bool,
}

impl Shape {
    pub fn line(points: &[[f32; 2]]) -> Self {
        Self {
            points: points.to_vec(),
            closed: false,
        }
    }

    pub fn area(points: &[[f32; 2]]) -> Self {
        Self {
            points: points.to_vec(),
            closed: true,
        }
    }

    /// Whether any part of the shape lies in the box (edges included).
    pub fn touches(&self, b: &BBox) -> bool {
        let n = self.points.len();
        let in_box = |[x, y]: [f32; 2]| x >= b.x1 && x <= b.x2 && y >= b.y1 && y <= b.y2;
        if self.points.iter().any(|&p| in_box(p)) {
            return true;
        }
        let edges = if self.closed && n > 2 {
            n
        } else {
            n.saturating_sub(1)
        };
        if (0..edges).any(|i| segment_meets_box(self.points[i], self.points[(i + 1) % n], b)) {
            return true;
        }
        // A box wholly inside an area meets none of its edges.
        self.closed && inside(&self.points, b.center())
    }
}

/// Whether the segment from `a` to `b` passes through the box: clipped to the box's
/// slabs one axis at a time (Liang–Barsky).
fn segment_meets_box([ax, ay]: [f32; 2], [bx, by]: [f32; 2], b: &BBox) -> bool {
    let (dx, dy) = (bx - ax, by - ay);
    let (mut t0, mut t1) = (0.0f32, 1.0f32);
    for (p, q) in [
        (-dx, ax - b.x1),
        (dx, b.x2 - ax),
        (-dy, ay - b.y1),
        (dy, b.y2 - ay),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
            continue;
        }
        let t = q / p;
        if p < 0.0 {
            t0 = t0.max(t);
        } else {
            t1 = t1.min(t);
        }
        if t0 > t1 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_a_square_and_a_concave_polygon() {
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(inside(&square, (5.0, 5.0)));
        assert!(!inside(&square, (15.0, 5.0)));
        let l_shape = [
            [0.0, 0.0],
            [10.0, 0.0],
            [10.0, 4.0],
            [4.0, 4.0],
            [4.0, 10.0],
            [0.0, 10.0],
        ];
        assert!(inside(&l_shape, (2.0, 8.0)));
        assert!(!inside(&l_shape, (8.0, 8.0)), "the notch is outside");
        assert!(
            !inside(&square[..2], (5.0, 0.0)),
            "a degenerate polygon holds nothing"
        );
    }

    #[test]
    fn a_segment_locates_points_by_side_and_extent() {
        // Left to right along y = 100: below it (y > 100) is the right-hand side.
        let s = Segment::new([0.0, 100.0], [200.0, 100.0]);
        let (d, along) = s.locate((50.0, 110.0));
        assert!((d - 10.0).abs() < 1e-4 && (along - 0.25).abs() < 1e-4);
        assert!(s.locate((50.0, 90.0)).0 < 0.0);
        assert_eq!(s.beside((250.0, 110.0), 0.1), None, "past the end");
        assert!(s.beside((210.0, 110.0), 0.1).is_some(), "within the slack");
    }

    #[test]
    fn a_shape_touches_the_boxes_it_reaches_into() {
        let stop_line = Shape::line(&[[440.0, 8.0], [440.0, 352.0]]);
        assert!(stop_line.touches(&BBox::new(400.0, 100.0, 460.0, 150.0)));
        assert!(
            !stop_line.touches(&BBox::new(400.0, 0.0, 460.0, 4.0)),
            "above its end"
        );
        assert!(!stop_line.touches(&BBox::new(300.0, 100.0, 439.0, 150.0)));
        let diagonal = Shape::line(&[[0.0, 0.0], [100.0, 100.0]]);
        assert!(
            diagonal.touches(&BBox::new(40.0, 40.0, 60.0, 60.0)),
            "crosses it"
        );
        assert!(
            !diagonal.touches(&BBox::new(60.0, 10.0, 90.0, 30.0)),
            "beside it"
        );
        let zone = Shape::area(&[
            [100.0, 100.0],
            [300.0, 100.0],
            [300.0, 300.0],
            [100.0, 300.0],
        ]);
        assert!(
            zone.touches(&BBox::new(150.0, 150.0, 160.0, 160.0)),
            "inside it"
        );
        assert!(
            zone.touches(&BBox::new(280.0, 150.0, 320.0, 160.0)),
            "over its edge"
        );
        assert!(!zone.touches(&BBox::new(310.0, 150.0, 320.0, 160.0)));
        let as_line = Shape::line(&zone.points);
        assert!(
            !as_line.touches(&BBox::new(150.0, 150.0, 160.0, 160.0)),
            "a line holds nothing between its points"
        );
    }

    #[test]
    fn crossing_time_is_interpolated() {
        let p = |ms: u64| TrackPoint {
            frame: 0,
            pts: Duration::from_millis(ms),
            bbox: BBox::new(0.0, 0.0, 1.0, 1.0),
            score: 1.0,
            class_id: 0,
        };
        assert_eq!(
            crossing_time(&p(1000), -10.0, &p(1400), 30.0),
            Duration::from_millis(1100)
        );
    }
}
