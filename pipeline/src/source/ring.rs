//! The last seconds of a camera's compressed stream, kept so that a violation's clip can
//! start before the violation. Whole GOPs are dropped from the front, so the buffer always
//! starts on a keyframe and a clip can be cut without re-encoding.

use std::collections::VecDeque;
use std::sync::Arc;

use gstreamer as gst;

/// One compressed H.264 access unit (Annex B byte-stream; SPS/PPS travel in-band before
/// each keyframe), timed on its stream's timeline.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    pub data: Arc<[u8]>,
    pub pts: gst::ClockTime,
    /// How long before it is shown it is decoded (pts − dts): B-frames make a stream's
    /// units arrive in another order than they are shown, and a muxer needs both times.
    pub decode_ahead: gst::ClockTime,
    pub keyframe: bool,
}

impl AccessUnit {
    /// When a unit is decoded and shown, given its buffer's times and the stream's origin.
    pub fn times(
        pts: gst::ClockTime,
        dts: Option<gst::ClockTime>,
        origin: gst::ClockTime,
    ) -> (gst::ClockTime, gst::ClockTime) {
        let ahead = dts.map_or(gst::ClockTime::ZERO, |d| pts.saturating_sub(d));
        (pts.saturating_sub(origin), ahead)
    }
}

pub struct RingBuffer {
    units: VecDeque<AccessUnit>,
    keep: gst::ClockTime,
    bytes: usize,
    /// A hard cap, whatever the bitrate: a camera sending far more than expected must not
    /// take the machine's memory.
    max_bytes: usize,
}

impl RingBuffer {
    pub fn new(keep: std::time::Duration, max_bytes: usize) -> Self {
        Self {
            units: VecDeque::new(),
            keep: gst::ClockTime::from_nseconds(keep.as_nanos() as u64),
            bytes: 0,
            max_bytes,
        }
    }

    pub fn push(&mut self, unit: AccessUnit) {
        // Nothing before the first keyframe can be decoded.
        if self.units.is_empty() && !unit.keyframe {
            return;
        }
        self.bytes += unit.data.len();
        let newest = unit.pts;
        self.units.push_back(unit);
        // Drop the oldest GOP while the next GOP alone still covers `keep` (or the cap is
        // exceeded and there is a later keyframe to start from).
        while let Some(next_key) = self.units.iter().skip(1).position(|u| u.keyframe) {
            let next_key = next_key + 1;
            let covers = newest.saturating_sub(self.units[next_key].pts) >= self.keep;
            if !(covers || self.bytes > self.max_bytes) {
                break;
            }
            for _ in 0..next_key {
                if let Some(u) = self.units.pop_front() {
                    self.bytes -= u.data.len();
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.units.clear();
        self.bytes = 0;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn span(&self) -> Option<(gst::ClockTime, gst::ClockTime)> {
        Some((self.units.front()?.pts, self.units.back()?.pts))
    }

    /// The units from the last keyframe at or before `from` (or the oldest kept) up to
    /// `to` inclusive.
    pub fn clip(&self, from: gst::ClockTime, to: gst::ClockTime) -> Vec<AccessUnit> {
        let start = self
            .units
            .iter()
            .rposition(|u| u.keyframe && u.pts <= from)
            .unwrap_or(0);
        self.units
            .iter()
            .skip(start)
            .take_while(|u| u.pts <= to)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn unit(ms: u64, keyframe: bool) -> AccessUnit {
        AccessUnit {
            decode_ahead: gst::ClockTime::ZERO,
            data: Arc::from(vec![0u8; 100].as_slice()),
            pts: gst::ClockTime::from_mseconds(ms),
            keyframe,
        }
    }

    /// 25 fps, a keyframe every `gop` frames, for `seconds`.
    fn stream(ring: &mut RingBuffer, gop: u64, seconds: u64) {
        for i in 0..seconds * 25 {
            ring.push(unit(i * 40, i % gop == 0));
        }
    }

    #[test]
    fn keeps_at_least_the_window_starting_on_a_keyframe() {
        let mut ring = RingBuffer::new(Duration::from_secs(5), usize::MAX);
        stream(&mut ring, 50, 30);
        let (first, last) = ring.span().unwrap();
        assert_eq!(last, gst::ClockTime::from_mseconds(29 * 1000 + 960));
        let covered = last - first;
        assert!(covered >= gst::ClockTime::from_seconds(5), "{covered}");
        assert!(covered < gst::ClockTime::from_seconds(7), "{covered}");
        assert!(ring.clip(first, last)[0].keyframe);
        assert_eq!(ring.bytes(), ring.clip(first, last).len() * 100);
    }

    #[test]
    fn a_clip_starts_on_the_keyframe_before_its_start() {
        let mut ring = RingBuffer::new(Duration::from_secs(10), usize::MAX);
        stream(&mut ring, 50, 20);
        let clip = ring.clip(
            gst::ClockTime::from_mseconds(15_300),
            gst::ClockTime::from_mseconds(17_000),
        );
        assert!(clip[0].keyframe);
        assert_eq!(clip[0].pts, gst::ClockTime::from_seconds(14));
        assert_eq!(clip.last().unwrap().pts, gst::ClockTime::from_seconds(17));
    }

    #[test]
    fn nothing_before_the_first_keyframe_and_a_byte_cap() {
        let mut ring = RingBuffer::new(Duration::from_secs(60), 100 * 120);
        ring.push(unit(0, false));
        assert!(ring.span().is_none());
        stream(&mut ring, 50, 20);
        assert!(ring.bytes() <= 100 * 120, "{}", ring.bytes());
        assert!(ring.clip(gst::ClockTime::ZERO, gst::ClockTime::MAX)[0].keyframe);
    }
}
