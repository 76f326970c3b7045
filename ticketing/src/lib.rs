//! Violation events and the cases they become.
//!
//! [`event::ViolationEvent`] is the one contract between the pipeline (which produces
//! events) and ticketing (which turns them into cases); it is versioned so workers and the
//! service can be upgraded apart.

pub mod event;
pub mod fines;
pub mod intake;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use event::{EVENT_SCHEMA_VERSION, PlateReading, ViolationEvent, ViolationKind};
pub use fines::{Fine, FineSchedules, VehicleCategory};
pub use intake::Intake;
pub use store::{CaseStore, CaseSummary, Recorded, StoreError};
