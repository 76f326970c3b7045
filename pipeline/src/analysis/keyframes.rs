//! Key frames: the recent analysed frames (with the signal seen on each) a violation's
//! evidence is drawn from, and the violations waiting for their "after" frame.

use std::collections::VecDeque;
use std::time::Duration;

use vigil_models::BBox;

use super::tracker::Track;
use crate::frame::Frame;
use crate::rules::Violation;
use crate::signal::SignalState;

/// A frame of the violation as evidence shows it.
#[derive(Debug, Clone)]
pub struct KeyFrame {
    pub label: &'static str,
    pub frame: Frame,
    pub bbox: BBox,
    pub signal: SignalState,
}

/// The last few analysed frames.
#[derive(Default)]
pub(crate) struct Recent {
    frames: VecDeque<(Frame, SignalState)>,
}

impl Recent {
    /// Keep `frame`, and at most `keep` frames (never fewer than four).
    pub fn push(&mut self, frame: Frame, signal: SignalState, keep: usize) {
        self.frames.push_back((frame, signal));
        while self.frames.len() > keep.max(4) {
            self.frames.pop_front();
        }
    }

    pub fn key_frame(&self, label: &'static str, frame_index: u64, bbox: BBox) -> Option<KeyFrame> {
        self.frames
            .iter()
            .find(|(f, _)| f.index == frame_index)
            .map(|(f, s)| KeyFrame {
                label,
                frame: f.clone(),
                bbox,
                signal: *s,
            })
    }

    /// The oldest kept frame `track` is on.
    fn oldest_with(&self, label: &'static str, track: &Track) -> Option<KeyFrame> {
        self.frames.iter().find_map(|(f, _)| {
            track
                .points
                .iter()
                .find(|p| p.frame == f.index)
                .and_then(|p| self.key_frame(label, f.index, p.bbox))
        })
    }
}

/// A violation decided, waiting for its "after" frame and a good view of its plate.
pub(crate) struct Pending {
    pub violation: Violation,
    pub before: KeyFrame,
    pub on: KeyFrame,
    /// Taken `after_delay` past the violation, kept while the plate waits for a better view.
    pub after: Option<KeyFrame>,
    /// The track's crops as they were when its plate was last tried and not read
    /// ([`super::plate_crops::PlateCrops::kept`]): tried again only on a new view.
    pub plate_tried: Option<u64>,
}

impl Pending {
    /// The violation with its "before" and "on" frames; `None` (logged) when the frames
    /// kept no longer show them.
    pub fn start(violation: Violation, track: &Track, recent: &Recent) -> Option<Self> {
        let point = |frame: u64| {
            track
                .points
                .iter()
                .find(|p| p.frame == frame)
                .map(|p| p.bbox)
        };
        // A "before" older than the frames kept (a vehicle that stood for minutes) is
        // shown by the oldest kept frame the vehicle is on.
        let before = point(violation.before_frame)
            .and_then(|b| recent.key_frame("before", violation.before_frame, b))
            .or_else(|| recent.oldest_with("before", track));
        let on = point(violation.frame).and_then(|b| recent.key_frame("on", violation.frame, b));
        match (before, on) {
            (Some(before), Some(on)) => Some(Self {
                violation,
                before,
                on,
                after: None,
                plate_tried: None,
            }),
            _ => {
                tracing::warn!(
                    track = track.id,
                    rule = %violation.rule,
                    "violation without its key frames; not reported"
                );
                None
            }
        }
    }

    /// Take the "after" frame from `track`'s latest point once `after_delay` has passed.
    pub fn see_after(
        &mut self,
        now: Duration,
        after_delay: Duration,
        track: &Track,
        recent: &Recent,
    ) {
        if self.after.is_none() && now >= self.violation.pts + after_delay {
            let last = track.last();
            self.after = recent.key_frame("after", last.frame, last.bbox);
        }
    }

    /// Its key frames, "after" taken from the track's first point `after_delay` past the
    /// violation (or its last) where none was taken yet.
    pub fn key_frames(
        &self,
        track: &Track,
        after_delay: Duration,
        recent: &Recent,
    ) -> Vec<KeyFrame> {
        let last = track.last();
        let after_point = track
            .points
            .iter()
            .find(|pt| pt.pts >= self.violation.pts + after_delay)
            .unwrap_or(last);
        let after = self.after.clone().or_else(|| {
            recent
                .key_frame("after", after_point.frame, after_point.bbox)
                .or_else(|| recent.key_frame("after", last.frame, last.bbox))
        });
        let mut frames = vec![self.before.clone(), self.on.clone()];
        frames.extend(after);
        frames
    }
}
