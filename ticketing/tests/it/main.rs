//! The case service's tests on real databases (every store test runs on SQLite and on
//! PostgreSQL), as one test binary.

mod api_fuzz;
mod audit;
mod auth;
mod bus;
mod cameras;
mod conformance;
mod evidence;
mod http;
mod intake;
mod review;
mod sightings;
mod store;

mod prelude {
    pub use chrono::{DateTime, Duration, Utc};
    pub use vigil_core::ViolationEvent;
    pub use vigil_testkit::samples::sample_event;
    pub use vigil_testkit::stores;
    pub use vigil_ticketing::db::{CaseStore, StoreError};
}
