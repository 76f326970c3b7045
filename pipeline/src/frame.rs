use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;

/// One analysed frame: its index in the analysis stream, its presentation time from the
/// start of the source, and the picture.
#[derive(Debug, Clone)]
pub struct Frame {
    pub index: u64,
    pub pts: Duration,
    pub image: Arc<RgbImage>,
}
