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
        check_username(username).map_err(StoreError::Invalid)?;
        check_new_password(password).map_err(StoreError::Invalid)?;
        let owned = password.to_string();
        let hash = off_the_request_threads(move || hash_password(&owned)).await??;
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

    /// Set a user's password: every session of the old one ends and every API token of
    /// the user is revoked (a password changed because it leaked must take its tokens
    /// with it).
    pub async fn set_password(
        &self,
        username: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        check_new_password(password).map_err(StoreError::Invalid)?;
        let owned = password.to_string();
        let hash = off_the_request_threads(move || hash_password(&owned)).await??;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE username = $2 AND disabled_at IS NULL",
        )
        .bind(hash)
        .bind(username)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("no user `{username}`")));
        }
        self.end_access(username, None, now).await?;
        Ok(())
    }

    /// Disable a user: they can no longer log in, their sessions end and their tokens are
    /// revoked. The last admin cannot be disabled (nobody could manage users then).
    pub async fn disable_user(&self, username: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, role FROM users WHERE username = $1 AND disabled_at IS NULL",
        )
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((_, role)) = row else {
            return Err(StoreError::Invalid(format!("no user `{username}`")));
        };
        if role == Role::Admin.as_str() {
            let admins: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE role = $1 AND disabled_at IS NULL",
            )
            .bind(Role::Admin.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if admins <= 1 {
                return Err(StoreError::Invalid(format!(
                    "`{username}` is the last admin: make another admin first"
                )));
            }
        }
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE username = $2")
            .bind(ts(now))
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.end_access(username, None, now).await?;
        Ok(())
    }

    /// Revoke a user's API tokens, those of one label or all; how many were revoked.
    pub async fn revoke_tokens(
        &self,
        username: &str,
        label: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(StoreError::Invalid(format!("no user `{username}`")));
        }
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1
             WHERE revoked_at IS NULL AND ($3 IS NULL OR label = $3)
               AND user_id IN (SELECT id FROM users WHERE username = $2)",
        )
        .bind(ts(now))
        .bind(username)
        .bind(label.map(str::to_string))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// A user's API tokens, newest first.
    pub async fn api_tokens(&self, username: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT t.label, t.created_at, t.revoked_at FROM api_tokens t
             JOIN users u ON u.id = t.user_id WHERE u.username = $1
             ORDER BY t.created_at DESC",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(label, created, revoked)| {
                Ok(TokenInfo {
                    created_at: parse_ts(&label, &created)?,
                    revoked_at: revoked.map(|r| parse_ts(&label, &r)).transpose()?,
                    label,
                })
            })
            .collect()
    }

    /// End a user's sessions and revoke their tokens (of `label`, or all).
    async fn end_access(
        &self,
        username: &str,
        label: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username)
        .execute(&self.pool)
        .await?;
        self.revoke_tokens(username, label, now).await?;
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
        let password = password.to_string();
        match row {
            Some((id, username, role, hash)) => {
                let right =
                    off_the_request_threads(move || verify_password(&password, &hash)).await?;
                if right {
                    Ok(Some(user_from(id, username, role)?))
                } else {
                    Ok(None)
                }
            }
            None => {
                // As long as a wrong password takes: no telling which names exist.
                let _ = off_the_request_threads(move || hash_password(&password)).await?;
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
