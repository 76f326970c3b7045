//! A plain IoU tracker: each detection joins the live track it overlaps most.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_models::BBox;

#[derive(Debug, Clone, PartialEq)]
pub struct TrackPoint {
    pub frame: u64,
    pub pts: Duration,
    pub bbox: BBox,
    pub score: f32,
    pub class_id: usize,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    /// The most recent points, oldest first (at most the tracker's `max_history`).
    pub points: Vec<TrackPoint>,
    /// Consecutive frames without a matching detection.
    pub misses: u32,
    /// Detections per class over the track's whole life, not only the kept points.
    class_counts: BTreeMap<usize, usize>,
}

impl Track {
    pub fn new(id: u64, first: TrackPoint) -> Self {
        let mut t = Self {
            id,
            points: Vec::new(),
            misses: 0,
            class_counts: BTreeMap::new(),
        };
        t.push(first, usize::MAX);
        t
    }

    /// Add a point, dropping the oldest beyond `max_history` so a vehicle that stays in
    /// view for hours costs no more than one passing through.
    pub fn push(&mut self, point: TrackPoint, max_history: usize) {
        *self.class_counts.entry(point.class_id).or_default() += 1;
        self.points.push(point);
        if self.points.len() > max_history.max(2) {
            let excess = self.points.len() - max_history.max(2);
            self.points.drain(..excess);
        }
    }

    pub fn last(&self) -> &TrackPoint {
        // A track is created with its first point and never drops below two.
        &self.points[self.points.len() - 1]
    }

    /// The class seen most often along the track.
    pub fn class_id(&self) -> usize {
        self.class_counts
            .iter()
            .max_by_key(|&(_, n)| *n)
            .map(|(c, _)| *c)
            .unwrap_or(0)
    }
}

/// A detection handed to the tracker.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub bbox: BBox,
    pub score: f32,
    pub class_id: usize,
}

pub struct IouTracker {
    pub min_iou: f32,
    /// Frames a track may go unseen before it ends.
    pub max_misses: u32,
    /// Points kept per track.
    pub max_history: usize,
    next_id: u64,
    live: Vec<Track>,
}

impl IouTracker {
    pub fn new(min_iou: f32, max_misses: u32) -> Self {
        Self {
            min_iou,
            max_misses,
            max_history: 150,
            next_id: 1,
            live: Vec::new(),
        }
    }

    /// Feed one frame's detections; returns the tracks that ended on this frame.
    pub fn update(
        &mut self,
        frame: u64,
        pts: Duration,
        observations: &[Observation],
    ) -> Vec<Track> {
        // Greedy matching, best overlap first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.live.iter().enumerate() {
            for (oi, o) in observations.iter().enumerate() {
                let iou = t.last().bbox.iou(&o.bbox);
                if iou >= self.min_iou {
                    pairs.push((iou, ti, oi));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_taken = vec![false; self.live.len()];
        let mut obs_taken = vec![false; observations.len()];
        for (_, ti, oi) in pairs {
            if track_taken[ti] || obs_taken[oi] {
                continue;
            }
            track_taken[ti] = true;
            obs_taken[oi] = true;
            let o = observations[oi];
            let t = &mut self.live[ti];
            t.push(
                TrackPoint {
                    frame,
                    pts,
                    bbox: o.bbox,
                    score: o.score,
                    class_id: o.class_id,
                },
                self.max_history,
            );
            t.misses = 0;
        }
        for (ti, taken) in track_taken.iter().enumerate() {
            if !taken {
                self.live[ti].misses += 1;
            }
        }
        for (oi, o) in observations.iter().enumerate() {
            if !obs_taken[oi] {
                let first = TrackPoint {
                    frame,
                    pts,
                    bbox: o.bbox,
                    score: o.score,
                    class_id: o.class_id,
                };
                self.live.push(Track::new(self.next_id, first));
                self.next_id += 1;
            }
        }
        let (ended, live): (Vec<Track>, Vec<Track>) = std::mem::take(&mut self.live)
            .into_iter()
            .partition(|t| t.misses > self.max_misses);
        self.live = live;
        ended
    }

    /// Tracks seen on `frame`.
    pub fn current(&self, frame: u64) -> impl Iterator<Item = &Track> {
        self.live.iter().filter(move |t| t.last().frame == frame)
    }

    pub fn get(&self, id: u64) -> Option<&Track> {
        self.live.iter().find(|t| t.id == id)
    }

    /// End every track (the stream ended).
    pub fn finish(&mut self) -> Vec<Track> {
        std::mem::take(&mut self.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(x: f32) -> Observation {
        Observation {
            bbox: BBox::new(x, 0.0, x + 100.0, 50.0),
            score: 0.9,
            class_id: 0,
        }
    }

    fn at(frame: u64) -> Duration {
        Duration::from_millis(frame * 200)
    }

    #[test]
    fn two_moving_vehicles_keep_their_ids() {
        let mut t = IouTracker::new(0.3, 2);
        for f in 0..10u64 {
            let ended = t.update(
                f,
                at(f),
                &[obs(f as f32 * 10.0), obs(400.0 - f as f32 * 10.0)],
            );
            assert!(ended.is_empty());
        }
        let ids: Vec<u64> = t.current(9).map(|tr| tr.id).collect();
        assert_eq!(ids, vec![1, 2]);
        assert!(t.current(9).all(|tr| tr.points.len() == 10));
    }

    #[test]
    fn a_track_survives_short_gaps_and_ends_after_max_misses() {
        let mut t = IouTracker::new(0.3, 2);
        t.update(0, at(0), &[obs(0.0)]);
        t.update(1, at(1), &[]);
        t.update(2, at(2), &[obs(5.0)]);
        assert_eq!(t.get(1).map(|tr| tr.points.len()), Some(2));
        t.update(3, at(3), &[]);
        t.update(4, at(4), &[]);
        let ended = t.update(5, at(5), &[]);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].id, 1);
        // A detection far from every track starts a new one.
        t.update(6, at(6), &[obs(300.0)]);
        assert_eq!(t.current(6).next().map(|tr| tr.id), Some(2));
    }

    #[test]
    fn a_vehicle_staying_in_view_keeps_bounded_history_and_its_whole_class_vote() {
        let mut t = IouTracker::new(0.3, 2);
        t.max_history = 20;
        for f in 0..1000u64 {
            let class_id = usize::from(f >= 600); // 600 frames as class 0, then 400 as class 1
            t.update(
                f,
                at(f),
                &[Observation {
                    class_id,
                    ..obs(0.0)
                }],
            );
        }
        let track = t.get(1).unwrap();
        assert_eq!(track.points.len(), 20);
        assert_eq!(track.points[0].frame, 980);
        assert_eq!(track.last().frame, 999);
        // The kept points are all class 1, but the vote covers the whole life.
        assert_eq!(track.class_id(), 0);
    }

    #[test]
    fn class_is_the_majority_along_the_track() {
        let mut t = IouTracker::new(0.3, 2);
        for (f, c) in [0usize, 1, 1].iter().enumerate() {
            t.update(
                f as u64,
                at(f as u64),
                &[Observation {
                    class_id: *c,
                    ..obs(f as f32)
                }],
            );
        }
        assert_eq!(t.finish()[0].class_id(), 1);
    }
}
