//! Where the pipeline's records go: [`EventSink`] takes violation events (which become
//! cases) and sightings (which investigators search). The case service's in-process intake,
//! an HTTP client of `vigil serve`, and a message bus each implement it; the pipeline sees
//! only this trait and its one error type.

use crate::event::ViolationEvent;
use crate::sighting::Sighting;

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New(i64),
    /// The event was recorded before; nothing changed.
    Duplicate(i64),
    /// Another event of the same plate, violation and camera within the dedup window made
    /// this case; the event and its evidence were added to it.
    Merged(i64),
    /// Taken by a durable queue (the fleet's event stream): the case service records it
    /// later, and there is no case number yet.
    Queued,
}

impl Recorded {
    /// The case's number, once a case store took the event (not while it is queued).
    pub fn case_id(&self) -> Option<i64> {
        match *self {
            Recorded::New(id) | Recorded::Duplicate(id) | Recorded::Merged(id) => Some(id),
            Recorded::Queued => None,
        }
    }

    /// `new`, `duplicate` or `merged`, as the HTTP intake answers.
    pub fn outcome(&self) -> &'static str {
        match self {
            Recorded::New(_) => "new",
            Recorded::Duplicate(_) => "duplicate",
            Recorded::Merged(_) => "merged",
            Recorded::Queued => "queued",
        }
    }

    pub fn from_outcome(outcome: &str, case_id: i64) -> Option<Self> {
        match outcome {
            "new" => Some(Recorded::New(case_id)),
            "duplicate" => Some(Recorded::Duplicate(case_id)),
            "merged" => Some(Recorded::Merged(case_id)),
            _ => None,
        }
    }
}

/// Why a sink did not take a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// It cannot take it now (down, busy, timed out): the same record may be sent again,
    /// and sinks ignore one they already hold.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// It will never take it as it is (malformed, refused by its rules): sending it again
    /// cannot help; a person must look at it.
    #[error("the store refused the record: {0}")]
    Refused(String),
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable(_))
    }
}

/// A store of cases and sightings. Calls block until the store answers; both are
/// idempotent (ids are derived from what they describe), so a retry never records twice.
pub trait EventSink: Send + Sync {
    fn record_event(&self, event: &ViolationEvent) -> Result<Recorded, SinkError>;

    /// True when the sighting is new.
    fn record_sighting(&self, sighting: &Sighting) -> Result<bool, SinkError>;
}
