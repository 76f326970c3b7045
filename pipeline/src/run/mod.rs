//! The ways the pipeline runs: over recorded files ([`batch`]), over live cameras
//! ([`live`]), and over a scenario suite with ground truth ([`eval`]).

pub mod batch;
pub mod eval;
pub mod live;
