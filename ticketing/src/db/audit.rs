//! The audit log: append-only rows (the database refuses changes), and its export.

use crate::db::{CaseStore, StoreError, parse_ts, ts};
use chrono::{DateTime, Utc};
use std::io::Write;

use crate::audit::*;

impl CaseStore {
    pub async fn audit(&self, at: DateTime<Utc>, r: AuditRecord<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, role, action, target, detail, client)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ts(at))
        .bind(r.actor)
        .bind(r.role)
        .bind(r.action)
        .bind(r.target)
        .bind(r.detail.map(|d| d.to_string()))
        .bind(r.client)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Entries after `after_id` (0 for all), oldest first, at most `limit`.
    pub async fn audit_entries(
        &self,
        after_id: i64,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor, role, action, target, detail, client FROM audit_log
                 WHERE id > $1 AND ($2 IS NULL OR at >= $2) ORDER BY id LIMIT $3",
        )
        .bind(after_id)
        .bind(since.map(ts))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, at, actor, role, action, target, detail, client)| {
                Ok(AuditEntry {
                    at: parse_ts(&format!("audit {id}"), &at)?,
                    detail: detail
                        .map(|d| serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d))),
                    id,
                    actor,
                    role,
                    action,
                    target,
                    client,
                })
            })
            .collect()
    }

    /// Write the whole log (or from `since`) as JSON lines, in pages, so a large log never
    /// sits in memory at once. Returns the number of lines.
    pub async fn export_audit(
        &self,
        since: Option<DateTime<Utc>>,
        out: &mut (dyn Write + Send),
    ) -> Result<usize, StoreError> {
        let mut after = 0;
        let mut n = 0;
        loop {
            let page = self.audit_entries(after, since, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for entry in &page {
                let line = serde_json::to_string(entry).map_err(|e| StoreError::Corrupt {
                    event_id: format!("audit {}", entry.id),
                    message: e.to_string(),
                })?;
                writeln!(out, "{line}")
                    .map_err(|e| StoreError::Invalid(format!("writing the audit export: {e}")))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
