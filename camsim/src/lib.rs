//! Simulated cameras: recorded H.264 files served by gst-rtsp-server on 127.0.0.1 as live,
//! looping streams, paced in real time. The test suite, `vigil demo --live` and the live
//! benchmark use them; nothing that runs a real deployment does.

mod recording;
mod server;

pub use recording::Unit;
pub use server::{Mount, TestRtspServer};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("GStreamer could not start: {0}; run scripts/setup to install it")]
    Init(String),
    #[error("{0}")]
    Gst(String),
}

fn init_gstreamer() -> Result<(), SimError> {
    gstreamer::init().map_err(|e| SimError::Init(e.to_string()))
}
