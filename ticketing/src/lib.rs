//! Violation events and the cases they become: intake, review, owner identification,
//! notices, deadlines, and the HTTP service over them.
//!
//! [`event::ViolationEvent`] is the one contract between the pipeline (which produces
//! events) and ticketing (which turns them into cases); it is versioned so workers and the
//! service can be upgraded apart.

pub mod audit;
pub mod auth;
pub mod bus_intake;
pub mod cameras;
pub mod db;
pub mod deadlines;
pub mod evidence;
pub mod fines;
pub mod http;
pub mod intake;
pub mod lifecycle;
pub mod notice;
pub mod owner;
pub mod payment;
pub mod review;
pub mod sightings;
pub mod worker;

pub use auth::Role;
pub use db::{CaseStore, CaseSummary, StoreError};
pub use evidence::EvidenceStore;
pub use fines::{Fine, FineSchedules, VehicleCategory};
pub use intake::Intake;
pub use lifecycle::{CaseState, RejectReason};
pub use notice::Agency;
