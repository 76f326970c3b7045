//! What officers do to a case: open it, approve it, reject it with a reason, correct its
//! plate. Each is one transaction with its history row; a case in the wrong state is
//! refused with the state it is in, never silently changed.

use crate::db::StoreError;
use vigil_core::plate;

/// What correcting a plate did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "case_id", rename_all = "snake_case")]
pub enum Corrected {
    /// The case now carries the corrected plate and waits for approval.
    Corrected(i64),
    /// Another case already held this vehicle's violation at this camera in the window:
    /// this case's events moved there.
    MergedInto(i64),
}

/// A plate as an officer typed it, checked against the Vietnamese plate grammar and
/// written in its normal form.
pub fn normalise_plate(text: &str) -> Result<String, StoreError> {
    let lines: Vec<&str> = text
        .split(['/', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let parsed = plate::parse(&lines);
    parsed
        .map(|p| p.to_string())
        .map_err(|e| StoreError::Invalid(format!("`{text}` is not a Vietnamese plate: {e}")))
}
