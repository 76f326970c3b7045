//! Whether what a camera found may leave the worker that found it. A camera of a
//! deployment file always may; a camera of a fleet may while its worker holds its lease
//! (the fleet's gate), and may have to wait while that is not known.

use chrono::{DateTime, Utc};

/// What may happen to a record of a camera made at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Emit it.
    Now,
    /// Keep it: whether this worker still holds the camera is not known yet.
    Hold,
    /// Never: another worker held the camera then.
    Never,
}

pub trait Admission: Send + Sync {
    /// May a record made at `at` leave this worker?
    fn admit(&self, at: DateTime<Utc>) -> Admit;
}

/// Every record leaves: a camera no other worker can run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Always;

impl Admission for Always {
    fn admit(&self, _at: DateTime<Utc>) -> Admit {
        Admit::Now
    }
}
