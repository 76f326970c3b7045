//! From a decided violation to its record: the [`publisher::Publisher`] writes the
//! [`evidence`] package (clip, key frames, plate, manifest) and [`signing`] signs it; the
//! event goes to an [`vigil_core::EventSink`] — the case service in-process, or over its
//! API ([`http_sink`]) — directly from a batch run, or through the [`recorder`], which
//! retries and spools so that a live camera never waits for a store.

pub mod evidence;
pub mod http_sink;
pub mod publisher;
pub mod recorder;
pub mod signing;
