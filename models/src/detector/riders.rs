//! Riders joined to the motorbikes they ride. COCO's detectors box a motorcycle without
//! its rider and the rider as a person; to Vigil a motorbike is the vehicle with whoever
//! rides it (its rules look for the rider's head in the motorbike's box, its truth and
//! the YOLO models trained on traffic box both together). So a person sitting on a
//! motorbike widens that motorbike's box, and a person on none (a pedestrian) is dropped:
//! a person is never a vehicle.

use super::Detection;
use crate::geometry::BBox;

/// Whether `rider` sits on `bike`: most of the person's width over the bike, the person's
/// middle above the bike's, and the person's lower half within the bike's height (legs
/// beside the tank or hidden behind it; a pedestrian behind a bike stands taller).
fn sits_on(rider: &BBox, bike: &BBox) -> bool {
    let overlap_x = (rider.x2.min(bike.x2) - rider.x1.max(bike.x1)).max(0.0);
    let (_, rider_mid) = rider.center();
    let (_, bike_mid) = bike.center();
    overlap_x >= 0.5 * rider.width()
        && rider_mid < bike_mid
        && rider.y2 > bike.y1 + 0.15 * bike.height()
        && rider.y2 <= bike.y2 + 0.1 * bike.height()
        && rider.height() < 2.5 * bike.height()
}

/// Join each rider (`rider` kind) to the motorbike (`bike` kind) it sits on, the one it
/// overlaps most: the motorbike's box grows to hold it. Riders on no motorbike are left
/// out, and no rider is left in the result.
pub(super) fn join_riders(found: Vec<Detection>, rider: usize, bike: usize) -> Vec<Detection> {
    let (riders, mut vehicles): (Vec<Detection>, Vec<Detection>) =
        found.into_iter().partition(|d| d.class_id == rider);
    let grown: Vec<BBox> = vehicles.iter().map(|v| v.bbox).collect();
    let mut joined = grown.clone();
    for r in &riders {
        let best = grown
            .iter()
            .enumerate()
            .filter(|(i, b)| vehicles[*i].class_id == bike && sits_on(&r.bbox, b))
            .max_by(|(_, a), (_, b)| r.bbox.intersection(a).total_cmp(&r.bbox.intersection(b)));
        if let Some((i, _)) = best {
            let j = &mut joined[i];
            *j = BBox::new(
                j.x1.min(r.bbox.x1),
                j.y1.min(r.bbox.y1),
                j.x2.max(r.bbox.x2),
                j.y2.max(r.bbox.y2),
            );
        }
    }
    for (v, b) in vehicles.iter_mut().zip(joined) {
        v.bbox = b;
    }
    vehicles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(class_id: usize, x1: f32, y1: f32, x2: f32, y2: f32) -> Detection {
        Detection {
            bbox: BBox::new(x1, y1, x2, y2),
            class_id,
            score: 0.8,
        }
    }

    #[test]
    fn a_rider_widens_the_bike_and_a_pedestrian_is_dropped() {
        const BIKE: usize = 1;
        const RIDER: usize = 4;
        let found = vec![
            d(BIKE, 100.0, 150.0, 200.0, 220.0),
            // On the bike: head above it, legs down its side.
            d(RIDER, 120.0, 90.0, 170.0, 200.0),
            // A pedestrian well to the side.
            d(RIDER, 300.0, 80.0, 330.0, 220.0),
            // A car, which takes no rider even where one stands over it.
            d(0, 400.0, 150.0, 560.0, 230.0),
            d(RIDER, 450.0, 60.0, 480.0, 200.0),
        ];
        let out = join_riders(found, RIDER, BIKE);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].bbox, BBox::new(100.0, 90.0, 200.0, 220.0));
        assert_eq!(out[1].bbox, BBox::new(400.0, 150.0, 560.0, 230.0));
        assert!(out.iter().all(|d| d.class_id != RIDER));
    }

    #[test]
    fn a_person_standing_behind_a_bike_is_not_its_rider() {
        // Feet below the bike's middle would be a rider; a person whose box ends far
        // above the bike, or far below it, is not on it.
        let bike = BBox::new(100.0, 150.0, 200.0, 220.0);
        assert!(!sits_on(&BBox::new(120.0, 20.0, 150.0, 155.0), &bike));
        assert!(!sits_on(&BBox::new(120.0, 140.0, 150.0, 300.0), &bike));
        assert!(sits_on(&BBox::new(120.0, 100.0, 160.0, 210.0), &bike));
    }
}
