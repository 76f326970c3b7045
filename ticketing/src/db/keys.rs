//! The keys whose signatures the service accepts on evidence packages: the data folder's
//! own, pinned the first time it is used with this database, and other machines' keys an
//! administrator trusted. A changed data-folder key is reported, never taken on.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use vigil_evidence::{TrustedKeys, parse_public_key};

use super::{CaseStore, StoreError, parse_ts, ts};

/// The label the data folder's own key is pinned under.
pub const DATA_FOLDER_KEY: &str = "data folder";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SigningKey {
    pub public_key: String,
    pub label: String,
    pub pinned_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What pinning the data folder's key found.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyPin {
    /// The first use: the key is pinned now.
    Pinned,
    /// The key is the one pinned (or one an administrator trusted).
    Known,
    /// Another key was pinned for the data folder: this one is not trusted.
    Changed {
        pinned: String,
        pinned_at: DateTime<Utc>,
    },
}

impl CaseStore {
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        sqlx::query(
            "SELECT public_key, label, pinned_at, revoked_at FROM signing_keys ORDER BY pinned_at",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let key: String = r.try_get("public_key")?;
            let pinned: String = r.try_get("pinned_at")?;
            let revoked: Option<String> = r.try_get("revoked_at")?;
            Ok(SigningKey {
                pinned_at: parse_ts(&key, &pinned)?,
                revoked_at: revoked.map(|t| parse_ts(&key, &t)).transpose()?,
                label: r.try_get("label")?,
                public_key: key,
            })
        })
        .collect()
    }

    /// The keys not revoked, as the verifier takes them.
    pub async fn trusted_keys(&self) -> Result<TrustedKeys, StoreError> {
        let mut keys = Vec::new();
        for k in self.signing_keys().await? {
            if k.revoked_at.is_none() {
                keys.push(
                    parse_public_key(&k.public_key).map_err(|e| StoreError::Corrupt {
                        event_id: format!("signing key {}", k.label),
                        message: e.to_string(),
                    })?,
                );
            }
        }
        Ok(TrustedKeys::new(keys))
    }

    /// Trust `public_key` (64 hex digits) under `label`; false if it was already trusted.
    /// A revoked key is trusted again only by this, on purpose.
    pub async fn trust_key(
        &self,
        public_key: &str,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = parse_public_key(public_key).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let hex_key = hex::encode(key.as_bytes());
        if label.trim().is_empty() || label.chars().count() > 64 {
            return Err(StoreError::Invalid(
                "a key's label must be 1 to 64 characters".into(),
            ));
        }
        let known: Option<Option<String>> =
            sqlx::query_scalar("SELECT revoked_at FROM signing_keys WHERE public_key = $1")
                .bind(&hex_key)
                .fetch_optional(&self.pool)
                .await?;
        match known {
            Some(None) => Ok(false),
            Some(Some(_)) => {
                sqlx::query(
                    "UPDATE signing_keys SET revoked_at = NULL, label = $2 WHERE public_key = $1",
                )
                .bind(&hex_key)
                .bind(label)
                .execute(&self.pool)
                .await?;
                Ok(true)
            }
            None => {
                sqlx::query(
                    "INSERT INTO signing_keys (public_key, label, pinned_at) VALUES ($1, $2, $3)",
                )
                .bind(&hex_key)
                .bind(label)
                .bind(ts(now))
                .execute(&self.pool)
                .await?;
                Ok(true)
            }
        }
    }

    /// Stop trusting a key; packages it signed no longer verify. False if it was not
    /// trusted.
    pub async fn revoke_key(
        &self,
        public_key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET revoked_at = $2 WHERE public_key = $1 AND revoked_at IS NULL",
        )
        .bind(public_key.trim().to_ascii_lowercase())
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Pin the data folder's key at its first use with this database; afterwards, say
    /// whether it is still the one pinned.
    pub async fn pin_data_folder_key(
        &self,
        public_key: &str,
        now: DateTime<Utc>,
    ) -> Result<KeyPin, StoreError> {
        let keys = self.signing_keys().await?;
        if keys
            .iter()
            .any(|k| k.public_key.eq_ignore_ascii_case(public_key) && k.revoked_at.is_none())
        {
            return Ok(KeyPin::Known);
        }
        if let Some(pinned) = keys
            .iter()
            .filter(|k| k.label == DATA_FOLDER_KEY)
            .max_by_key(|k| k.pinned_at)
        {
            return Ok(KeyPin::Changed {
                pinned: pinned.public_key.clone(),
                pinned_at: pinned.pinned_at,
            });
        }
        self.trust_key(public_key, DATA_FOLDER_KEY, now).await?;
        Ok(KeyPin::Pinned)
    }
}
