//! A recorded file decoded with GStreamer:
//! `filesrc ! decodebin ! videorate ! videoconvert ! videoscale ! RGB @ analysis fps ! appsink`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{FrameSource, SourceError, bus_error, init_gstreamer, rgb_from_sample};
use crate::frame::Frame;

/// A recorded video decoded to RGB frames at the analysis rate.
pub struct FileSource {
    path: PathBuf,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    next_index: u64,
    finished: bool,
    /// Timestamp of the first buffer: frames are timed from it, since encoders with B-frames
    /// (x264's default) start the presentation timeline a few frames late.
    first_pts: Option<gst::ClockTime>,
    /// A decoder that yields nothing for this long, with no error and no end, has stalled
    /// (seen on files cut inside their index): the file fails, named, and the next goes on.
    stall_after: Duration,
}

/// How long a file may decode nothing before it is given up on: far longer than any
/// frame of a file that is whole takes, however loaded the machine.
pub const DECODE_STALL: Duration = Duration::from_secs(30);

/// What a file is, when its first bytes say it is something other than a recording (a
/// still picture renamed `.mp4` would decode to one frame and fail far from its cause).
fn not_a_video(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let (caps, _) =
        gstreamer_base::functions::type_find_helper_for_data(None::<&gst::Object>, &head).ok()?;
    let name = caps.structure(0)?.name().to_string();
    let still = name.starts_with("image/")
        || name.starts_with("text/")
        || name.starts_with("audio/")
        || name == "application/pdf"
        || name == "application/zip";
    still.then(|| format!("a {name} file"))
}

impl FileSource {
    pub fn open(path: &Path, analysis_fps: u32) -> Result<Self, SourceError> {
        let source = Self::open_paused(path, &Self::analysis_conversion(analysis_fps))?;
        source.play()?;
        Ok(source)
    }

    /// Frames are thinned to the analysis rate before they are converted to RGB: at 5
    /// of 25 fps, four in five conversions would be thrown away.
    fn analysis_conversion(analysis_fps: u32) -> String {
        let caps =
            format!("video/x-raw,format=RGB,pixel-aspect-ratio=1/1,framerate={analysis_fps}/1");
        format!(
            "videorate ! video/x-raw,framerate={analysis_fps}/1 ! videoconvert ! videoscale ! {caps}"
        )
    }

    /// The part of a file from `from` to `until` (its end when `None`), as [`FileSource::open`]
    /// would give those frames: timed from the file's start, on the same analysis-rate grid
    /// (`from` is rounded down to it), so a segment's frames are the whole file's frames of
    /// the same moments. The decoder starts at the keyframe before `from` and drops what
    /// comes before it (an accurate seek).
    pub fn open_segment(
        path: &Path,
        analysis_fps: u32,
        from: Duration,
        until: Option<Duration>,
    ) -> Result<Self, SourceError> {
        let mut source = Self::open_paused(path, &Self::analysis_conversion(analysis_fps))?;
        let step = 1_000_000_000 / u64::from(analysis_fps.max(1));
        let from = (from.as_nanos() as u64 / step) * step;
        let decode_err = |message: String| SourceError::Decode {
            path: path.to_owned(),
            message,
        };
        // Prerolled before it can seek.
        let (prerolled, _, _) = source.pipeline.state(gst::ClockTime::from_seconds(30));
        if prerolled.is_err() {
            return Err(decode_err(
                bus_error(&source.pipeline).unwrap_or_else(|| "the file would not open".into()),
            ));
        }
        // The whole file's frames are timed from its first frame (encoders with B-frames
        // start the timeline a few frames late): the prerolled frame is that first frame,
        // and the segment's frames are timed from it alike.
        let base = source
            .sink
            .pull_preroll()
            .ok()
            .and_then(|s| s.buffer().and_then(|b| b.pts()))
            .unwrap_or(gst::ClockTime::ZERO);
        // Seek positions are in the file's own time, where the first frame is at 0 (its
        // late start is the container's shift): a frame at `from` there comes out
        // stamped `base + from`.
        let stop = until.map(|u| gst::ClockTime::from_nseconds(u.as_nanos() as u64));
        source
            .pipeline
            .seek(
                1.0,
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::SeekType::Set,
                Some(gst::ClockTime::from_nseconds(from)),
                if stop.is_some() {
                    gst::SeekType::Set
                } else {
                    gst::SeekType::None
                },
                stop,
            )
            .map_err(|e| decode_err(format!("cannot seek to {:.1} s: {e}", from as f64 / 1e9)))?;
        // Frames are timed from the file's first frame, not from the segment's.
        source.first_pts = Some(base);
        source.play()?;
        Ok(source)
    }

    /// Decode only: every frame in its decoded format, nothing converted (for benchmarks).
    pub fn open_decode_only(path: &Path) -> Result<Self, SourceError> {
        Self::open_with(path, "identity")
    }

    fn open_with(path: &Path, conversion: &str) -> Result<Self, SourceError> {
        let source = Self::open_paused(path, conversion)?;
        source.play()?;
        Ok(source)
    }

    fn play(&self) -> Result<(), SourceError> {
        self.pipeline.set_state(gst::State::Playing).map_err(|_| {
            let message =
                bus_error(&self.pipeline).unwrap_or_else(|| "the pipeline would not start".into());
            let _ = self.pipeline.set_state(gst::State::Null);
            SourceError::Decode {
                path: self.path.clone(),
                message,
            }
        })?;
        Ok(())
    }

    fn open_paused(path: &Path, conversion: &str) -> Result<Self, SourceError> {
        init_gstreamer()?;
        if !path.is_file() {
            return Err(SourceError::NotFound {
                path: path.to_owned(),
            });
        }
        let decode_err = |message: String| SourceError::Decode {
            path: path.to_owned(),
            message,
        };
        if let Some(kind) = not_a_video(path) {
            return Err(decode_err(format!(
                "it is {kind}, not a video (whatever its name says)"
            )));
        }
        let description = format!(
            "filesrc name=src ! decodebin ! {conversion} ! appsink name=sink sync=false max-buffers=8 drop=false"
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| decode_err(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| decode_err("not a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .ok_or_else(|| decode_err("no filesrc".into()))?;
        src.set_property("location", path.to_string_lossy().to_string());
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| decode_err("no appsink".into()))?;
        pipeline.set_state(gst::State::Paused).map_err(|_| {
            let message =
                bus_error(&pipeline).unwrap_or_else(|| "the pipeline would not start".into());
            let _ = pipeline.set_state(gst::State::Null);
            decode_err(message)
        })?;
        Ok(Self {
            path: path.to_owned(),
            pipeline,
            sink,
            next_index: 0,
            finished: false,
            first_pts: None,
            stall_after: DECODE_STALL,
        })
    }

    /// The file's length as its container says, reading only what that takes.
    pub fn probe_duration(path: &Path) -> Result<Option<Duration>, SourceError> {
        let source = Self::open_paused(path, "identity")?;
        let (prerolled, _, _) = source.pipeline.state(gst::ClockTime::from_seconds(30));
        if prerolled.is_err() {
            return Err(SourceError::Decode {
                path: path.to_owned(),
                message: bus_error(&source.pipeline)
                    .unwrap_or_else(|| "the file would not open".into()),
            });
        }
        Ok(source.duration())
    }

    /// Give up on the file after `d` without a decoded frame (default [`DECODE_STALL`]).
    pub fn with_stall(mut self, d: Duration) -> Self {
        self.stall_after = d;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's duration, once the pipeline knows it (after the first frame at the latest).
    pub fn duration(&self) -> Option<Duration> {
        self.pipeline
            .query_duration::<gst::ClockTime>()
            .map(|d| Duration::from_nanos(d.nseconds()))
    }

    /// Time of a buffer from the first frame.
    fn relative(&mut self, pts: Option<gst::ClockTime>) -> Duration {
        let Some(pts) = pts else {
            return Duration::ZERO;
        };
        let first = *self.first_pts.get_or_insert(pts);
        Duration::from_nanos(pts.saturating_sub(first).nseconds())
    }

    fn next_sample(&mut self) -> Result<Option<gst::Sample>, SourceError> {
        // Real time on purpose: this is a wait for GStreamer's threads, not a schedule.
        let since = std::time::Instant::now();
        loop {
            if let Some(sample) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
            {
                return Ok(Some(sample));
            }
            if let Some(message) = bus_error(&self.pipeline) {
                return Err(SourceError::Decode {
                    path: self.path.clone(),
                    message,
                });
            }
            if self.sink.is_eos() {
                return Ok(None);
            }
            if since.elapsed() > self.stall_after {
                return Err(SourceError::Decode {
                    path: self.path.clone(),
                    message: format!(
                        "nothing decoded for {} s: the file may be cut short or damaged",
                        self.stall_after.as_secs()
                    ),
                });
            }
        }
    }

    /// Pull the next decoded buffer without converting it; `None` at the end.
    pub fn next_raw(&mut self) -> Option<Result<Duration, SourceError>> {
        if self.finished {
            return None;
        }
        match self.next_sample() {
            Ok(Some(sample)) => {
                let pts = sample.buffer().and_then(|b| b.pts());
                Some(Ok(self.relative(pts)))
            }
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }

    fn frame_from_sample(&mut self, sample: &gst::Sample) -> Result<Frame, SourceError> {
        let (image, pts) = rgb_from_sample(sample).map_err(|m| SourceError::Decode {
            path: self.path.clone(),
            message: m.into(),
        })?;
        Ok(Frame {
            index: self.next_index,
            pts: self.relative(pts),
            image: Arc::new(image),
        })
    }
}

impl Iterator for FileSource {
    type Item = Result<Frame, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let result = match self.next_sample() {
            Ok(Some(sample)) => self.frame_from_sample(&sample),
            Ok(None) => {
                self.finished = true;
                return None;
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => self.next_index += 1,
            Err(_) => self.finished = true,
        }
        Some(result)
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        self.next().transpose()
    }

    fn ended(&self) -> bool {
        self.finished
    }

    fn duration(&self) -> Option<Duration> {
        FileSource::duration(self)
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/generated")
            .join(name);
        assert!(path.is_file(), "{}: run scripts/setup", path.display());
        path
    }

    /// A segment's frames are the whole file's frames of the same moments: same times on
    /// the same grid, same pixels. Segments of one recording can then be analysed apart
    /// and agree on when (and so under which event id) something happened.
    #[test]
    fn a_segment_gives_the_whole_files_frames_of_its_moments() {
        let path = fixture("redlight_a.mp4");
        let whole: Vec<(Duration, Arc<image::RgbImage>)> = FileSource::open(&path, 5)
            .unwrap()
            .map(|f| f.map(|f| (f.pts, f.image)).unwrap())
            .collect();
        assert!(whole.len() > 40, "{} frames", whole.len());
        for (from, until) in [(4.1, Some(8.0)), (0.0, Some(3.0)), (9.3, None)] {
            let from = Duration::from_secs_f64(from);
            let until = until.map(Duration::from_secs_f64);
            let part: Vec<(Duration, Arc<image::RgbImage>)> =
                FileSource::open_segment(&path, 5, from, until)
                    .unwrap()
                    .map(|f| f.map(|f| (f.pts, f.image)).unwrap())
                    .collect();
            let grid_from = Duration::from_millis(from.as_millis() as u64 / 200 * 200);
            let expected: Vec<&(Duration, Arc<image::RgbImage>)> = whole
                .iter()
                .filter(|(pts, _)| *pts >= grid_from && until.is_none_or(|u| *pts < u))
                .collect();
            let times = |v: &[&(Duration, Arc<image::RgbImage>)]| {
                v.iter().map(|(p, _)| p.as_millis()).collect::<Vec<_>>()
            };
            let got: Vec<&(Duration, Arc<image::RgbImage>)> = part.iter().collect();
            assert_eq!(times(&got), times(&expected), "{from:?}..{until:?}");
            for ((pts, a), (_, b)) in got.iter().zip(&expected) {
                assert!(a.as_raw() == b.as_raw(), "frame at {pts:?} differs");
            }
        }
    }

    #[test]
    fn a_decoder_that_yields_nothing_fails_the_file_by_name_instead_of_hanging() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/generated/redlight_a.mp4"),
            file.path(),
        )
        .expect("fixture: run scripts/setup");
        // A pipeline that holds each frame for 3 s stands for a decoder that stalled.
        let mut source = FileSource::open_with(file.path(), "identity sleep-time=3000000")
            .unwrap()
            .with_stall(Duration::from_millis(500));
        let err = source
            .next_raw()
            .expect("an answer")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nothing decoded") && err.contains(&file.path().display().to_string()),
            "{err}"
        );
        assert!(source.next_raw().is_none(), "then the file is done with");
    }
}
