//! The contract between Vigil's pipeline, which decides violations, and its case service,
//! which turns them into tickets: the [`event::ViolationEvent`] (versioned) and the
//! [`sighting::Sighting`], the [`sink::EventSink`] they are handed to, the Vietnamese
//! [`plate`] grammar and OCR [`look_alike`] folding, the [`clock::Clock`], the local time
//! zone and the data folder's layout. Serde, chrono and uuid only: every part of the system
//! links this, none of it links the others to speak to each other.

pub mod admission;
pub mod clock;
pub mod data_dir;
pub mod event;
pub mod footage;
pub mod local_time;
pub mod look_alike;
pub mod plate;
pub mod sighting;
pub mod sink;
pub mod violation;

pub use admission::{Admission, Admit, Always};
pub use clock::{Clock, ManualClock, SystemClock};
pub use data_dir::DataDir;
pub use event::{EVENT_SCHEMA_VERSION, EventError, PlateCandidate, PlateReading, ViolationEvent};
pub use local_time::TIME_ZONE;
pub use plate::PlateColour;
pub use sighting::Sighting;
pub use sink::{EventSink, Recorded, SinkError};
pub use violation::ViolationKind;
