//! Users, browser sessions and API tokens (only hashes stored).

use crate::db::{CaseStore, StoreError, parse_ts, ts};
use chrono::{DateTime, Utc};

use crate::auth::*;

impl CaseStore {
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let username = username.trim();
        if username.is_empty()
            || username.len() > 64
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        {
            return Err(StoreError::Invalid(format!(
                "user name `{username}`: 1–64 letters, digits, `.`, `_`, `-` or `@`"
            )));
        }
        if password.chars().count() < 12 {
            return Err(StoreError::Invalid(
                "a password needs at least 12 characters".into(),
            ));
        }
        let hash = hash_password(password)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!(
                "user `{username}` already exists"
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
        )
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(ts(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(User {
            id,
            username: username.to_string(),
            role,
        })
    }

    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), StoreError> {
        if password.chars().count() < 12 {
            return Err(StoreError::Invalid(
                "a password needs at least 12 characters".into(),
            ));
        }
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(hash_password(password)?)
            .bind(username)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no user `{username}`")));
        }
        // A new password ends every session of the old one.
        sqlx::query(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, username, role FROM users WHERE disabled_at IS NULL ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, u, r)| user_from(id, u, r))
            .collect()
    }

    /// The user, if the password is theirs. Unknown users cost a hash too, so timing does
    /// not tell which names exist.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, username, role, password_hash FROM users
             WHERE username = $1 AND disabled_at IS NULL",
        )
        .bind(username.trim())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some((id, username, role, hash)) => {
                if verify_password(password, &hash) {
                    Ok(Some(user_from(id, username, role)?))
                } else {
                    Ok(None)
                }
            }
            None => {
                let _ = hash_password(password);
                Ok(None)
            }
        }
    }

    /// A new session; returns (session token for the cookie, the session).
    pub async fn create_session(
        &self,
        user: &User,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), StoreError> {
        let token = random_token()?;
        let csrf = random_token()?;
        let expires_at = now + SESSION_LIFETIME;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(&token))
        .bind(user.id)
        .bind(&csrf)
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(&self.pool)
        .await?;
        // Expired sessions go when anyone logs in; no separate cleaner needed.
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(ts(now))
            .execute(&self.pool)
            .await?;
        Ok((
            token,
            Session {
                user: user.clone(),
                csrf_token: csrf,
                expires_at,
            },
        ))
    }

    pub async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let row: Option<(i64, String, String, String, String)> = sqlx::query_as(
            "SELECT u.id, u.username, u.role, s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND u.disabled_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, username, role, csrf, expires)) = row else {
            return Ok(None);
        };
        let expires_at = parse_ts("session", &expires)?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(Session {
            user: user_from(id, username, role)?,
            csrf_token: csrf,
            expires_at,
        }))
    }

    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A new API token for a user (shown once; only its hash is kept).
    pub async fn create_api_token(
        &self,
        username: &str,
        label: &str,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE username = $1 AND disabled_at IS NULL")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        let id = id.ok_or_else(|| StoreError::Invalid(format!("no user `{username}`")))?;
        let token = format!("vgl_{}", random_token()?);
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&token))
        .bind(id)
        .bind(label)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    pub async fn token_user(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT u.id, u.username, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, u, r)| user_from(id, u, r)).transpose()
    }
}
