//! The clocks the law runs on: owner identification within 10 days of detection, a flag
//! 20 days after an unresolved notice, and the 1-year limitation.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Circular 73/2024 Art. 24.1.
pub const OWNER_IDENTIFICATION: Duration = Duration::days(10);
/// Decree 168/2024 Art. 4 (one year from the device's recording).
pub const LIMITATION: Duration = Duration::days(365);

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Overdue {
    pub case_id: i64,
    pub plate: Option<String>,
    pub state: String,
    /// `owner_identification` or `notice_unresolved`.
    pub deadline: String,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Sweep {
    pub flagged: usize,
    pub expired: usize,
}
