//! Each camera's last reported health.

use crate::db::{CaseStore, StoreError, parse_ts, ts};
use sqlx::Row;

use crate::cameras::*;

impl CaseStore {
    /// Record a camera's health, replacing its last report.
    pub async fn report_camera(&self, c: &CameraHealth) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO camera_health (camera_id, name, location, latitude, longitude, state,
                 reason, fps_in, frames_in, frames_dropped, reconnects, last_frame_at,
                 thumbnail, reported_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (camera_id) DO UPDATE SET
                 name = excluded.name, location = excluded.location,
                 latitude = excluded.latitude, longitude = excluded.longitude,
                 state = excluded.state, reason = excluded.reason, fps_in = excluded.fps_in,
                 frames_in = excluded.frames_in, frames_dropped = excluded.frames_dropped,
                 reconnects = excluded.reconnects,
                 last_frame_at = COALESCE(excluded.last_frame_at, camera_health.last_frame_at),
                 thumbnail = COALESCE(excluded.thumbnail, camera_health.thumbnail),
                 reported_at = excluded.reported_at",
        )
        .bind(&c.camera_id)
        .bind(&c.name)
        .bind(&c.location)
        .bind(c.latitude)
        .bind(c.longitude)
        .bind(&c.state)
        .bind(c.reason.clone())
        .bind(c.fps_in)
        .bind(c.frames_in as i64)
        .bind(c.frames_dropped as i64)
        .bind(c.reconnects as i64)
        .bind(c.last_frame_at.map(ts))
        .bind(c.thumbnail.clone())
        .bind(ts(c.reported_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every camera that has reported, by id.
    pub async fn cameras(&self) -> Result<Vec<CameraHealth>, StoreError> {
        let rows = sqlx::query(
            "SELECT camera_id, name, location, latitude, longitude, state, reason, fps_in,
                    frames_in, frames_dropped, reconnects, last_frame_at, thumbnail, reported_at
             FROM camera_health ORDER BY camera_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(camera_from_row).collect()
    }

    pub async fn camera(&self, id: &str) -> Result<Option<CameraHealth>, StoreError> {
        Ok(self
            .cameras()
            .await?
            .into_iter()
            .find(|c| c.camera_id == id))
    }
}

fn camera_from_row(row: &sqlx::any::AnyRow) -> Result<CameraHealth, StoreError> {
    let id: String = row.try_get("camera_id")?;
    let count =
        |name: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
    Ok(CameraHealth {
        name: row.try_get("name")?,
        location: row.try_get("location")?,
        latitude: row.try_get("latitude")?,
        longitude: row.try_get("longitude")?,
        state: row.try_get("state")?,
        reason: row.try_get("reason")?,
        fps_in: row.try_get("fps_in")?,
        frames_in: count("frames_in")?,
        frames_dropped: count("frames_dropped")?,
        reconnects: count("reconnects")?,
        last_frame_at: row
            .try_get::<Option<String>, _>("last_frame_at")?
            .map(|t| parse_ts(&id, &t))
            .transpose()?,
        thumbnail: row.try_get("thumbnail")?,
        reported_at: parse_ts(&id, &row.try_get::<String, _>("reported_at")?)?,
        camera_id: id,
    })
}
