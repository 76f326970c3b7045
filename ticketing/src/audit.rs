//! The audit log: who looked at or decided what, append-only (the database refuses
//! updates and deletes), exportable as JSON lines for the national security-monitoring
//! centre.

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    pub client: Option<String>,
}

pub(crate) type AuditRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One thing to audit.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord<'a> {
    pub actor: &'a str,
    pub role: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<String>,
    pub detail: Option<serde_json::Value>,
    pub client: Option<String>,
}
