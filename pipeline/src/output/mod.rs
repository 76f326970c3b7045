//! From a decided violation to its record: the [`publisher::Publisher`] writes the
//! [`evidence`] package (clip, key frames, plate, manifest) and signs it (the package's
//! format, key and checks are [`vigil_evidence`]'s); the
//! event goes to an [`vigil_core::EventSink`] — the case service in-process, or over its
//! API ([`http_sink`]) — directly from a batch run, or through the [`recorder`], which
//! retries and spools so that a live camera never waits for a store.

pub mod evidence;
pub mod http_sink;
pub mod orphans;
pub mod publisher;
pub mod recorder;
