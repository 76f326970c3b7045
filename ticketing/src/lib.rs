//! Violation events and the cases they become: intake, review, owner identification,
//! notices, deadlines, and the HTTP service over them.
//!
//! [`event::ViolationEvent`] is the one contract between the pipeline (which produces
//! events) and ticketing (which turns them into cases); it is versioned so workers and the
//! service can be upgraded apart.

pub mod audit;
pub mod auth;
pub mod cameras;
pub mod clock;
pub mod deadlines;
pub mod event;
pub mod fines;
pub mod http;
pub mod intake;
pub mod lifecycle;
pub mod notice;
pub mod owner;
pub mod plate;
pub mod review;
pub mod sightings;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use auth::Role;
pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{EVENT_SCHEMA_VERSION, PlateReading, ViolationEvent, ViolationKind};
pub use fines::{Fine, FineSchedules, VehicleCategory};
pub use intake::Intake;
pub use lifecycle::{CaseState, RejectReason};
pub use notice::Agency;
pub use store::{CaseStore, CaseSummary, Recorded, StoreError};
