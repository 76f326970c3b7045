//! Where analysis frames come from. [`FrameSource`] is the seam: a recorded file
//! ([`file::FileSource`]) or a live camera ([`rtsp::LiveCamera`]'s frames) behind it, and
//! in tests anything that yields [`Frame`]s in order. [`clip::ClipSource`] is the other
//! seam: where a violation's clip is cut from (the recording, or the camera's [`ring`]).

pub mod clip;
pub mod created;
pub mod file;
pub mod mux;
pub mod ring;
pub mod rtsp;

use std::path::PathBuf;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use image::RgbImage;

use crate::frame::Frame;

pub use file::FileSource;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("video {path}: file not found")]
    NotFound { path: PathBuf },
    #[error("GStreamer could not start: {0}; run scripts/setup to install it")]
    Init(String),
    #[error("decoder {element} is not available: {why}")]
    NoDecoder {
        element: &'static str,
        why: &'static str,
    },
    #[error("video {path}: cannot decode: {message}")]
    Decode { path: PathBuf, message: String },
    /// Shown without its credentials.
    #[error("camera URL `{url}`: {message}")]
    CameraUrl { url: String, message: String },
    #[error("camera {camera}: {message}")]
    Camera { camera: String, message: String },
}

/// Analysis frames, oldest first, each timed from the start of its source.
pub trait FrameSource: Send {
    /// The next frame, or `None` when there is none now: at the end of a recording, or
    /// between a live camera's frames (see [`FrameSource::ended`]).
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// No frame will come again: a recording read to its end, a camera stopped.
    fn ended(&self) -> bool;

    /// How long the source is, where it has a length and it is known yet.
    fn duration(&self) -> Option<Duration> {
        None
    }
}

pub fn init_gstreamer() -> Result<(), SourceError> {
    gst::init().map_err(|e| SourceError::Init(e.to_string()))
}

/// An RGB sample's picture (rows copied out of GStreamer's stride) and its timestamp.
pub(crate) fn rgb_from_sample(
    sample: &gst::Sample,
) -> Result<(RgbImage, Option<gst::ClockTime>), &'static str> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|_| "unreadable video caps")?;
    let buffer = sample.buffer().ok_or("sample without buffer")?;
    let map = buffer.map_readable().map_err(|_| "unreadable buffer")?;
    let (w, h) = (info.width(), info.height());
    let stride = info.stride()[0] as usize;
    let row = w as usize * 3;
    let data = map.as_slice();
    if h == 0 || data.len() < stride * (h as usize - 1) + row {
        return Err("buffer smaller than its caps say");
    }
    let mut pixels = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        pixels.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    let image = RgbImage::from_raw(w, h, pixels).ok_or("bad frame size")?;
    Ok((image, buffer.pts()))
}

/// The first error message waiting on the pipeline's bus, with GStreamer's debug detail.
pub(crate) fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            let detail = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
            return Some(format!("{}{detail}", e.error()));
        }
    }
    None
}
