//! Notices: identified cases of one plate issued on one notice, its publication record
//! in the outbox (delivered until accepted), and payment.

use crate::db::{CaseStore, StoreError, parse_ts, ts};
use crate::fines::combine;
use crate::lifecycle::CaseState;
use crate::owner::Owner;
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::BTreeMap;
use vigil_core::local_time::TIME_ZONE;

use crate::notice::*;

/// The states in which a noticed case is paid with its notice.
pub(crate) const PAYABLE: [CaseState; 2] = [CaseState::NoticeSent, CaseState::Flagged];

impl CaseStore {
    /// Issue a notice for each vehicle with identified cases, covering all of them, and
    /// queue its publication. Returns the codes issued.
    pub async fn issue_notices(
        &self,
        agency: &Agency,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let plates: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT plate FROM cases WHERE state = $1 AND plate IS NOT NULL ORDER BY plate",
        )
        .bind(CaseState::OwnerIdentified.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut codes = Vec::new();
        for plate in plates {
            let mut tx = self.begin().await?;
            self.lock_key(&mut tx, &format!("notice|{plate}")).await?;
            let rows = sqlx::query(
                "SELECT id, camera_id, violation, vehicle_class, occurred_at, owner_json, event_json,
                        fine_decree, fine_article, fine_min_vnd, fine_max_vnd, fine_points
                 FROM cases WHERE state = $1 AND plate = $2 ORDER BY occurred_at, id",
            )
            .bind(CaseState::OwnerIdentified.as_str())
            .bind(&plate)
            .fetch_all(&mut *tx)
            .await?;
            if rows.is_empty() {
                continue;
            }
            let mut owner: Option<Owner> = None;
            let mut violations = Vec::new();
            let mut fines = Vec::new();
            let mut vehicle_class = String::new();
            for row in &rows {
                let case_id: i64 = row.try_get("id")?;
                let owner_json: Option<String> = row.try_get("owner_json")?;
                if owner.is_none() {
                    owner = owner_json
                        .map(|j| serde_json::from_str(&j))
                        .transpose()
                        .map_err(|e| corrupt(format!("case {case_id}"), e))?;
                }
                let event_json: String = row.try_get("event_json")?;
                let event = vigil_core::ViolationEvent::from_json(&event_json)
                    .map_err(|e| corrupt(format!("case {case_id}"), e))?;
                let occurred: String = row.try_get("occurred_at")?;
                let occurred = parse_ts(&format!("case {case_id}"), &occurred)?;
                vehicle_class = row.try_get("vehicle_class")?;
                let fine = crate::db::fine_from_row(row)?;
                violations.push(PublishedViolation {
                    case_id,
                    violation: row.try_get("violation")?,
                    time: occurred.with_timezone(&TIME_ZONE).to_rfc3339(),
                    location: event.location.clone(),
                    camera_id: row.try_get("camera_id")?,
                    article: fine.as_ref().map(|f| f.article.clone()),
                    decree: fine.as_ref().map(|f| f.decree.clone()),
                    fine_min_vnd: fine.as_ref().map(|f| f.min_vnd),
                    fine_max_vnd: fine.as_ref().map(|f| f.max_vnd),
                    points: fine.as_ref().map(|f| f.points),
                });
                fines.extend(fine);
            }
            let owner = owner.ok_or_else(|| corrupt(format!("plate {plate}"), "owner missing"))?;
            let penalty = combine(&fines);
            let code = new_notice_code()?;
            let record = PublicationRecord {
                notice_code: code.clone(),
                vehicle_type: owner.vehicle_type.clone().unwrap_or(vehicle_class),
                plate_colour: plate_colour_of(&owner),
                plate: plate.clone(),
                violations,
                detecting_unit: agency.detecting_unit.clone(),
                handling_unit: agency.handling_unit.clone(),
                contact_phone: agency.contact_phone.clone(),
                fine_total_min_vnd: penalty.min_vnd,
                fine_total_max_vnd: penalty.max_vnd,
                points: penalty.points,
                issued_at: now,
            };
            let record_json =
                serde_json::to_string(&record).map_err(|e| corrupt(format!("notice {code}"), e))?;
            let owner_json =
                serde_json::to_string(&owner).map_err(|e| corrupt(format!("notice {code}"), e))?;
            let notice_id: i64 = sqlx::query(
                "INSERT INTO notices (code, plate, owner_json, fine_min_vnd, fine_max_vnd, points,
                                      record_json, issued_at, flag_due_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(&code)
            .bind(&plate)
            .bind(owner_json)
            .bind(penalty.min_vnd as i64)
            .bind(penalty.max_vnd as i64)
            .bind(penalty.points as i64)
            .bind(&record_json)
            .bind(ts(now))
            .bind(ts(now + FLAG_AFTER))
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            for row in &rows {
                let case_id: i64 = row.try_get("id")?;
                self.transition(
                    &mut tx,
                    case_id,
                    &[CaseState::OwnerIdentified],
                    CaseState::NoticeSent,
                    "system",
                    "notice_sent",
                    Some(&format!("notice {code}")),
                    now,
                )
                .await?;
                sqlx::query("UPDATE cases SET notice_id = $1 WHERE id = $2")
                    .bind(notice_id)
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO outbox (topic, idempotency_key, payload, created_at, next_attempt_at)
                 VALUES ('notice.published', $1, $2, $3, $3)",
            )
            .bind(format!("notice-{code}"))
            .bind(&record_json)
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(%code, %plate, cases = rows.len(), "notice issued");
            codes.push(code);
        }
        Ok(codes)
    }

    /// A notice by its code, if `plate` is the plate it was issued to (compared without
    /// case or separators).
    pub async fn notice(&self, code: &str, plate: Option<&str>) -> Result<Notice, StoreError> {
        let code = code.trim().to_ascii_uppercase();
        let row = sqlx::query(
            "SELECT id, code, plate, owner_json, record_json, issued_at, flag_due_at, resolved_at,
                    payment_reference
             FROM notices WHERE code = $1",
        )
        .bind(&code)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoticeNotFound(code.clone()))?;
        let stored_plate: String = row.try_get("plate")?;
        let squash = |p: &str| {
            p.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect::<String>()
        };
        if let Some(plate) = plate
            && squash(plate) != squash(&stored_plate)
        {
            return Err(StoreError::NoticeNotFound(code));
        }
        let id: i64 = row.try_get("id")?;
        let what = format!("notice {code}");
        let owner: String = row.try_get("owner_json")?;
        let record: String = row.try_get("record_json")?;
        let issued: String = row.try_get("issued_at")?;
        let due: String = row.try_get("flag_due_at")?;
        let resolved: Option<String> = row.try_get("resolved_at")?;
        let evidence: Vec<(i64, String)> = sqlx::query_as(
            "SELECT e.case_id, e.event_id FROM case_events e
             JOIN cases c ON c.id = e.case_id WHERE c.notice_id = $1 ORDER BY e.occurred_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let cases: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, state FROM cases WHERE notice_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        let case_ids: Vec<i64> = cases.iter().map(|(id, _)| *id).collect();
        let payable_case_ids: Vec<i64> = cases
            .iter()
            .filter(|(_, state)| {
                state
                    .parse::<CaseState>()
                    .is_ok_and(|s| PAYABLE.contains(&s))
            })
            .map(|(id, _)| *id)
            .collect();
        let record: PublicationRecord =
            serde_json::from_str(&record).map_err(|e| corrupt(&what, e))?;
        Ok(Notice {
            owner: serde_json::from_str(&owner).map_err(|e| corrupt(&what, e))?,
            amount_due_vnd: if payable_case_ids.is_empty() {
                0
            } else {
                crate::payment::amount_due_for(&record, &payable_case_ids)
            },
            payable_case_ids,
            payment_claims: self.payment_claims(&code).await?,
            record,
            issued_at: parse_ts(&what, &issued)?,
            flag_due_at: parse_ts(&what, &due)?,
            resolved_at: resolved.map(|r| parse_ts(&what, &r)).transpose()?,
            payment_reference: row.try_get("payment_reference")?,
            case_ids,
            evidence,
            code,
        })
    }

    /// The owner names the driver (Decree 168/2024 Art. 47.8.b): the case leaves the
    /// owner's notice for a decision against the driver.
    pub async fn record_appeal(
        &self,
        case_id: i64,
        driver: &Driver,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if driver.name.trim().is_empty() || driver.id_number.trim().is_empty() {
            return Err(StoreError::Invalid(
                "an appeal names the driver: name and ID number".into(),
            ));
        }
        let long = |t: &str, max: usize| t.chars().count() > max;
        if long(&driver.name, 200)
            || long(&driver.id_number, 32)
            || driver.address.as_deref().is_some_and(|a| long(a, 500))
        {
            return Err(StoreError::Invalid(
                "a driver's name is at most 200 characters, ID number 32, address 500".into(),
            ));
        }
        let json = serde_json::to_string(driver).map_err(|e| corrupt("driver", e))?;
        let mut tx = self.begin().await?;
        self.transition(
            &mut tx,
            case_id,
            &[CaseState::NoticeSent, CaseState::Flagged],
            CaseState::Appealed,
            actor,
            "appealed",
            Some(&format!("driver {}", driver.name.trim())),
            now,
        )
        .await?;
        sqlx::query("UPDATE cases SET driver_json = $1 WHERE id = $2")
            .bind(json)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deliver due outbox rows; returns how many were delivered.
    pub async fn publish_outbox(
        &self,
        webhook: &Webhook,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let due: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, idempotency_key, payload, attempts FROM outbox
             WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT 100",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        let mut delivered = 0;
        for (id, key, payload, attempts) in due {
            match webhook.deliver(&key, &payload).await {
                Ok(()) => {
                    sqlx::query("UPDATE outbox SET delivered_at = $1, attempts = attempts + 1 WHERE id = $2")
                        .bind(ts(now))
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    delivered += 1;
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "publication failed; will retry");
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2
                         WHERE id = $3",
                    )
                    .bind(e)
                    .bind(ts(now + crate::owner::retry_delay(attempts)))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Undelivered outbox rows, by topic.
    pub async fn outbox_pending(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT topic, COUNT(*) FROM outbox WHERE delivered_at IS NULL GROUP BY topic",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}
