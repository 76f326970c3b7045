//! Continuous recording: each camera's compressed stream written to segment files as it
//! arrives, without re-encoding, so that any sighting, not only a violation, has its
//! video. A segment is a fragmented MP4 (a fragment a second): a process killed while
//! writing leaves every earlier segment whole and the last one playable up to its last
//! fragment. Each file is named by the wall-clock time of its first frame, so the folder
//! is its own index; a segment's end is when it was last written (its modification time).
//! [`retention`] removes the oldest; evidence clips live elsewhere and are never touched.

pub mod export;
pub mod retention;
mod writer;

use std::path::PathBuf;

pub use vigil_core::footage::{
    FootageFolderError, StoredSegment, parse_segment_name, segment_at, segment_name, segments_in,
};
pub use writer::SegmentWriter;

#[derive(Debug, thiserror::Error)]
pub enum FootageError {
    #[error("footage {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(transparent)]
    Folder(#[from] FootageFolderError),
}

