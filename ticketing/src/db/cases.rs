//! Cases: the intake that makes (or merges into) a case with its fine and history row,
//! and the reads a reviewer and the pages make.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::fines::Fine;
use crate::lifecycle::CaseState;
pub use vigil_core::Recorded;
use vigil_core::ViolationKind;
use vigil_core::event::ViolationEvent;

use super::{CaseStore, StoreError, append_history, fold_plate, in_list, parse_ts, ts};

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseSummary {
    pub id: i64,
    /// The first event the case was made from.
    pub event_id: String,
    pub camera_id: String,
    #[schema(value_type = crate::http::schema::ViolationKindSchema)]
    pub violation: ViolationKind,
    pub plate: Option<String>,
    pub plate_confidence: Option<f64>,
    /// The plate came in with a confidence under the service's threshold: it is the
    /// likeliest reading, to be confirmed or corrected by an officer before approval.
    pub plate_uncertain: bool,
    pub vehicle_class: String,
    pub occurred_at: DateTime<Utc>,
    pub state: CaseState,
    #[schema(value_type = Option<Object>)]
    pub fine: Option<Fine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<CaseState>,
    pub to_state: CaseState,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseEventRef {
    /// Its evidence package is `/api/evidence/{event_id}/manifest.json`.
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// Everything an officer sees about one case.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub original_plate: Option<String>,
    pub reject_reason: Option<String>,
    pub reject_text: Option<String>,
    pub merged_into: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub owner: Option<serde_json::Value>,
    pub owner_error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub driver: Option<serde_json::Value>,
    pub notice_code: Option<String>,
    /// The other plates the pipeline's reads pointed to, likeliest first.
    #[schema(value_type = Vec<Object>)]
    pub plate_candidates: Vec<vigil_core::PlateCandidate>,
    pub events: Vec<CaseEventRef>,
    pub history: Vec<HistoryEntry>,
}

/// Which cases a listing shows; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub states: Vec<CaseState>,
    pub camera_id: Option<String>,
    pub violation: Option<ViolationKind>,
    /// Matched forgivingly: see [`fold_plate`].
    pub plate: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

const CASE_COLUMNS: &str =
    "id, event_id, camera_id, violation, plate, plate_confidence, plate_uncertain, vehicle_class,
    occurred_at, state, created_at, updated_at,
    fine_decree, fine_article, fine_min_vnd, fine_max_vnd, fine_points";

/// The fine stored with a case (the `fine_*` columns), if it was fined.
pub(crate) fn fine_from_row(row: &sqlx::any::AnyRow) -> Result<Option<Fine>, StoreError> {
    let Some(decree) = row.try_get::<Option<String>, _>("fine_decree")? else {
        return Ok(None);
    };
    Ok(Some(Fine {
        decree,
        article: row
            .try_get::<Option<String>, _>("fine_article")?
            .unwrap_or_default(),
        min_vnd: row.try_get::<Option<i64>, _>("fine_min_vnd")?.unwrap_or(0) as u64,
        max_vnd: row.try_get::<Option<i64>, _>("fine_max_vnd")?.unwrap_or(0) as u64,
        points: row.try_get::<Option<i64>, _>("fine_points")?.unwrap_or(0) as u8,
    }))
}

/// A state as stored; one this build does not know is a corrupt row, named.
pub(crate) fn parse_state(what: &str, s: &str) -> Result<CaseState, StoreError> {
    s.parse().map_err(|message| StoreError::Corrupt {
        event_id: what.to_string(),
        message,
    })
}

fn parse_violation(what: &str, s: &str) -> Result<ViolationKind, StoreError> {
    ViolationKind::parse(s).ok_or_else(|| StoreError::Corrupt {
        event_id: what.to_string(),
        message: format!("unknown violation `{s}`"),
    })
}

fn summary_from_row(row: &sqlx::any::AnyRow) -> Result<CaseSummary, StoreError> {
    let event_id: String = row.try_get("event_id")?;
    let occurred: String = row.try_get("occurred_at")?;
    let created: String = row.try_get("created_at")?;
    let updated: Option<String> = row.try_get("updated_at")?;
    let fine = fine_from_row(row)?;
    let created_at = parse_ts(&event_id, &created)?;
    Ok(CaseSummary {
        fine,
        id: row.try_get("id")?,
        camera_id: row.try_get("camera_id")?,
        violation: parse_violation(&event_id, &row.try_get::<String, _>("violation")?)?,
        plate: row.try_get("plate")?,
        plate_confidence: row.try_get("plate_confidence")?,
        plate_uncertain: row.try_get::<i64, _>("plate_uncertain")? != 0,
        vehicle_class: row.try_get("vehicle_class")?,
        occurred_at: parse_ts(&event_id, &occurred)?,
        state: parse_state(&event_id, &row.try_get::<String, _>("state")?)?,
        created_at,
        updated_at: match updated {
            Some(u) => parse_ts(&event_id, &u)?,
            None => created_at,
        },
        event_id,
    })
}

/// The plate confidence under which a case's plate is only a best guess, unless the
/// service is told otherwise. A confidence is how likely the read is right (the product
/// of its characters' probabilities, fused over the track's reads); on the generated
/// plates no wrong read scored above this (docs/design/plates.md).
pub const DEFAULT_PLATE_CERTAIN_AT: f32 = 0.65;

impl CaseStore {
    /// [`CaseStore::record_with`] at the default plate threshold.
    pub async fn record(
        &self,
        event: &ViolationEvent,
        fine: Option<&Fine>,
        now: DateTime<Utc>,
        dedup_window: Duration,
    ) -> Result<Recorded, StoreError> {
        self.record_with(event, fine, now, dedup_window, DEFAULT_PLATE_CERTAIN_AT)
            .await
    }

    /// Record an event once: a second call with the same event id changes nothing. An
    /// event of the same plate, violation and camera as a case still open for it, within
    /// `dedup_window` of that case's events, is added to that case with its evidence. A
    /// plate read with less confidence than `plate_certain_at` makes a case of its own,
    /// marked uncertain: a misread must not merge one vehicle's violation into another's.
    pub async fn record_with(
        &self,
        event: &ViolationEvent,
        fine: Option<&Fine>,
        now: DateTime<Utc>,
        dedup_window: Duration,
        plate_certain_at: f32,
    ) -> Result<Recorded, StoreError> {
        let event_id = event.event_id.to_string();
        let json = serde_json::to_string(event).map_err(|e| StoreError::Corrupt {
            event_id: event_id.clone(),
            message: e.to_string(),
        })?;
        let plate = event.plate.as_ref().map(|p| p.text.clone());
        let uncertain = event
            .plate
            .as_ref()
            .is_some_and(|p| p.confidence < plate_certain_at);
        // An uncertain plate is no key to merge by.
        let merge_by = plate.as_ref().filter(|_| !uncertain);
        let mut tx = self.begin().await?;
        let lock = match merge_by {
            Some(p) => format!("dedup|{}|{}|{p}", event.camera_id, event.violation.as_str()),
            None => format!("event|{event_id}"),
        };
        self.lock_key(&mut tx, &lock).await?;

        let known: Option<i64> =
            sqlx::query_scalar("SELECT case_id FROM case_events WHERE event_id = $1")
                .bind(&event_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(case_id) = known {
            tx.rollback().await?;
            return Ok(Recorded::Duplicate(case_id));
        }
        let occurred = ts(event.occurred_at);
        let now_s = ts(now);

        let target: Option<i64> = match merge_by {
            Some(plate) => {
                sqlx::query_scalar(&format!(
                    "SELECT id FROM cases
                     WHERE camera_id = $1 AND violation = $2 AND plate = $3
                       AND plate_uncertain = 0 AND state IN ({})
                       AND last_occurred_at >= $4 AND occurred_at <= $5
                     ORDER BY id LIMIT 1",
                    in_list(&CaseState::MERGEABLE)
                ))
                .bind(&event.camera_id)
                .bind(event.violation.as_str())
                .bind(plate)
                .bind(ts(event.occurred_at - dedup_window))
                .bind(ts(event.occurred_at + dedup_window))
                .fetch_optional(&mut *tx)
                .await?
            }
            None => None,
        };

        let (case_id, outcome) = if let Some(case_id) = target {
            let (first, last): (String, String) =
                sqlx::query_as("SELECT occurred_at, last_occurred_at FROM cases WHERE id = $1")
                    .bind(case_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let first = parse_ts(&event_id, &first)?.min(event.occurred_at);
            let last = parse_ts(&event_id, &last)?.max(event.occurred_at);
            sqlx::query(
                "UPDATE cases SET occurred_at = $1, last_occurred_at = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(ts(first))
            .bind(ts(last))
            .bind(&now_s)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
            let state: String = sqlx::query_scalar("SELECT state FROM cases WHERE id = $1")
                .bind(case_id)
                .fetch_one(&mut *tx)
                .await?;
            append_history(
                &mut tx,
                case_id,
                now,
                "intake",
                "event_merged",
                Some(&state),
                &state,
                Some(&format!("event {event_id} at {occurred}")),
            )
            .await?;
            (case_id, Recorded::Merged(case_id))
        } else {
            let row = sqlx::query(
                "INSERT INTO cases (event_id, camera_id, violation, plate, plate_key, plate_confidence,
                                    vehicle_class, occurred_at, last_occurred_at, evidence_dir, event_json,
                                    created_at, updated_at, state,
                                    fine_decree, fine_article, fine_min_vnd, fine_max_vnd, fine_points,
                                    plate_uncertain)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, $17, $18)
                 RETURNING id",
            )
            .bind(&event_id)
            .bind(&event.camera_id)
            .bind(event.violation.as_str())
            .bind(plate.clone())
            .bind(plate.as_deref().map(fold_plate))
            .bind(event.plate.as_ref().map(|p| p.confidence as f64))
            .bind(&event.vehicle_class)
            .bind(&occurred)
            .bind(&event_id)
            .bind(&json)
            .bind(&now_s)
            .bind(CaseState::Detected.as_str())
            .bind(fine.map(|f| f.decree.clone()))
            .bind(fine.map(|f| f.article.clone()))
            .bind(fine.map(|f| f.min_vnd as i64))
            .bind(fine.map(|f| f.max_vnd as i64))
            .bind(fine.map(|f| f.points as i64))
            .bind(uncertain as i64)
            .fetch_one(&mut *tx)
            .await?;
            let case_id: i64 = row.try_get("id")?;
            append_history(
                &mut tx,
                case_id,
                now,
                "intake",
                "detected",
                None,
                CaseState::Detected.as_str(),
                Some(&if uncertain {
                    format!("event {event_id}; plate uncertain")
                } else {
                    format!("event {event_id}")
                }),
            )
            .await?;
            (case_id, Recorded::New(case_id))
        };
        sqlx::query(
            "INSERT INTO case_events (event_id, case_id, occurred_at, evidence_dir, event_json, received_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&event_id)
        .bind(case_id)
        .bind(&occurred)
        .bind(&event_id)
        .bind(&json)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// All cases, oldest violation first.
    pub async fn list(&self) -> Result<Vec<CaseSummary>, StoreError> {
        self.list_filtered(&CaseFilter::default()).await
    }

    /// The cases a filter selects, oldest violation first.
    pub async fn list_filtered(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>, StoreError> {
        use crate::sightings::{MAX_NAME, MAX_TYPED, shown};
        if let Some(p) = &filter.plate
            && p.chars().count() > MAX_TYPED
        {
            return Err(StoreError::Invalid(format!(
                "plate `{}`: a plate is typed in at most {MAX_TYPED} characters",
                shown(p)
            )));
        }
        if let Some(c) = &filter.camera_id
            && c.chars().count() > MAX_NAME
        {
            return Err(StoreError::Invalid(format!(
                "camera `{}`: at most {MAX_NAME} characters",
                shown(c)
            )));
        }
        let states = if filter.states.is_empty() {
            String::new()
        } else {
            format!("AND state IN ({})", in_list(&filter.states))
        };
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM cases
             WHERE ($1 IS NULL OR camera_id = $1)
               AND ($2 IS NULL OR violation = $2)
               AND ($3 IS NULL OR plate_key LIKE $3)
               AND ($4 IS NULL OR occurred_at >= $4)
               AND ($5 IS NULL OR occurred_at <= $5)
               {states}
             ORDER BY occurred_at, id
             LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.camera_id.clone())
            .bind(filter.violation.map(|v| v.as_str()))
            .bind(
                filter
                    .plate
                    .as_deref()
                    .map(|p| format!("%{}%", fold_plate(p))),
            )
            .bind(filter.from.map(ts))
            .bind(filter.to.map(ts))
            .bind(filter.limit.unwrap_or(i64::MAX).clamp(0, 100_000))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary_from_row).collect()
    }

    pub async fn summary(&self, case_id: i64) -> Result<CaseSummary, StoreError> {
        let row = sqlx::query(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"))
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::CaseNotFound(case_id))?;
        summary_from_row(&row)
    }

    /// A case with its events, history, owner and notice.
    pub async fn case(&self, case_id: i64) -> Result<CaseDetail, StoreError> {
        let summary = self.summary(case_id).await?;
        let row = sqlx::query(
            "SELECT c.original_plate, c.reject_reason, c.reject_text, c.merged_into, c.owner_json,
                    c.owner_error, c.driver_json, c.event_json, n.code
             FROM cases c LEFT JOIN notices n ON n.id = c.notice_id WHERE c.id = $1",
        )
        .bind(case_id)
        .fetch_one(&self.pool)
        .await?;
        let json = |col: &str| -> Result<Option<serde_json::Value>, StoreError> {
            let text: Option<String> = row.try_get(col)?;
            text.map(|t| {
                serde_json::from_str(&t).map_err(|e| StoreError::Corrupt {
                    event_id: summary.event_id.clone(),
                    message: format!("{col}: {e}"),
                })
            })
            .transpose()
        };
        let events = sqlx::query(
            "SELECT event_id, occurred_at FROM case_events WHERE case_id = $1
             ORDER BY occurred_at, event_id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let event_id: String = r.try_get("event_id")?;
            let at: String = r.try_get("occurred_at")?;
            Ok(CaseEventRef {
                occurred_at: parse_ts(&event_id, &at)?,
                event_id,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        // The candidates are the first event's, as it came in (the event was checked then).
        let event_json: String = row.try_get("event_json")?;
        let plate_candidates = ViolationEvent::from_json(&event_json)
            .ok()
            .and_then(|e| e.plate)
            .map(|p| p.candidates)
            .unwrap_or_default();
        Ok(CaseDetail {
            plate_candidates,
            original_plate: row.try_get("original_plate")?,
            reject_reason: row.try_get("reject_reason")?,
            reject_text: row.try_get("reject_text")?,
            merged_into: row.try_get("merged_into")?,
            owner: json("owner_json")?,
            owner_error: row.try_get("owner_error")?,
            driver: json("driver_json")?,
            notice_code: row.try_get("code")?,
            history: self.history(case_id).await?,
            events,
            summary,
        })
    }

    /// Every transition of a case, oldest first.
    pub async fn history(&self, case_id: i64) -> Result<Vec<HistoryEntry>, StoreError> {
        sqlx::query(
            "SELECT at, actor, action, from_state, to_state, detail FROM case_history
             WHERE case_id = $1 ORDER BY id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let at: String = r.try_get("at")?;
            Ok(HistoryEntry {
                at: parse_ts(&format!("case {case_id}"), &at)?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                from_state: r
                    .try_get::<Option<String>, _>("from_state")?
                    .map(|s| parse_state(&format!("case {case_id}"), &s))
                    .transpose()?,
                to_state: parse_state(
                    &format!("case {case_id}"),
                    &r.try_get::<String, _>("to_state")?,
                )?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
    }

    /// The event a case was made from.
    pub async fn event(&self, case_id: i64) -> Result<Option<ViolationEvent>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT event_id, event_json FROM cases WHERE id = $1")
                .bind(case_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(event_id, json)| {
            ViolationEvent::from_json(&json).map_err(|e| StoreError::Corrupt {
                event_id,
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Any event, by its id, with the case it belongs to.
    pub async fn event_by_id(
        &self,
        event_id: &str,
    ) -> Result<Option<(i64, ViolationEvent)>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT case_id, event_json FROM case_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(case_id, json)| {
            ViolationEvent::from_json(&json)
                .map(|e| (case_id, e))
                .map_err(|e| StoreError::Corrupt {
                    event_id: event_id.to_string(),
                    message: e.to_string(),
                })
        })
        .transpose()
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM cases")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Cases per state.
    pub async fn count_by_state(&self) -> Result<Vec<(CaseState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM cases GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(s, n)| Ok((parse_state("cases", &s)?, n)))
            .collect()
    }
}
