//! `vigil footage`: the cameras' continuous recording on this machine: what is kept, and
//! a time range of one camera exported as one MP4 with a signed manifest.

use std::path::PathBuf;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use serde_json::json;
use vigil_core::local_time::local_seconds;
use vigil_pipeline::footage::export::{ExportError, ExportRequest, export};
use vigil_ticketing::http::footage::{ExportFailure, ExportMade, FootageExporter};
use vigil_pipeline::footage::segments_in;

use super::Context;
use super::users::audited;

#[derive(clap::Args)]
pub struct FootageArgs {
    #[command(subcommand)]
    pub action: FootageAction,
}

#[derive(clap::Subcommand)]
pub enum FootageAction {
    /// Each recorded camera: its segments, the span they cover and their size.
    List,
    /// One camera's footage from `--from` to `--to` as one MP4 (from the keyframe at or
    /// before `--from`, not re-encoded) in the folder `--out`, with a manifest signed by
    /// this data folder's key (check it with `vigil verify --public-key KEY FOLDER`).
    /// Audited.
    Export {
        #[arg(long)]
        camera: String,
        /// RFC 3339, e.g. 2026-12-07T08:15:00+07:00.
        #[arg(long)]
        from: DateTime<chrono::FixedOffset>,
        #[arg(long)]
        to: DateTime<chrono::FixedOffset>,
        /// The folder to write (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(ctx: &Context, args: FootageArgs) -> Result<()> {
    match args.action {
        FootageAction::List => list(ctx),
        FootageAction::Export {
            camera,
            from,
            to,
            out,
        } => {
            if out.exists() {
                bail!("{} already exists; name a new folder", out.display());
            }
            let store = ctx.open_store()?;
            let actor = super::search::cli_actor();
            let exported = export(
                &ctx.data.camera_footage(&camera),
                &ExportRequest {
                    camera_id: &camera,
                    from: from.to_utc(),
                    to: to.to_utc(),
                    exported_by: &actor,
                    now: Utc::now(),
                },
                &out,
                &*ctx.key()?,
            )?;
            audited(
                ctx,
                &store,
                "footage_export",
                &format!("camera {camera}"),
                json!({"from": from.to_rfc3339(), "to": to.to_rfc3339(), "bytes": exported.bytes}),
            )?;
            println!(
                "{}: {} to {} from {} segment(s), {:.1} MB; verify with: vigil verify --public-key {} {}",
                out.display(),
                local_seconds(exported.starts_at),
                local_seconds(exported.ends_at),
                exported.segments,
                exported.bytes as f64 / 1e6,
                ctx.key()?.public_hex(),
                out.display()
            );
            Ok(())
        }
    }
}

fn list(ctx: &Context) -> Result<()> {
    let root = ctx.data.footage();
    let cameras = match std::fs::read_dir(&root) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("no footage in {} (record with [run] record = true)", root.display());
            return Ok(());
        }
        Err(e) => bail!("{}: {e}", root.display()),
    };
    let mut names: Vec<_> = cameras.flatten().map(|c| c.path()).collect();
    names.sort();
    for dir in names {
        let segments = segments_in(&dir)?;
        let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
            continue;
        };
        let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
        println!(
            "{}: {} segment(s), {} to {}, {:.1} MB",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            segments.len(),
            local_seconds(first.started_at),
            local_seconds(last.written_until),
            bytes as f64 / 1e6
        );
    }
    Ok(())
}

/// `vigil serve`'s exports: this data folder's footage, signed with its key.
pub struct Exporter {
    pub data: vigil_core::DataDir,
    pub key: std::sync::Arc<vigil_evidence::EvidenceKey>,
}

impl FootageExporter for Exporter {
    fn export(
        &self,
        camera_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        exported_by: &str,
        out: &std::path::Path,
    ) -> Result<ExportMade, ExportFailure> {
        let request = ExportRequest {
            camera_id,
            from,
            to,
            exported_by,
            now: Utc::now(),
        };
        match export(&self.data.camera_footage(camera_id), &request, out, &self.key) {
            Ok(e) => Ok(ExportMade {
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                bytes: e.bytes,
                segments: e.segments,
            }),
            Err(e @ (ExportError::EmptyRange { .. } | ExportError::TooLong(_))) => {
                Err(ExportFailure::Refused(e.to_string()))
            }
            Err(e @ ExportError::NoFootage { .. }) => Err(ExportFailure::NoFootage(e.to_string())),
            Err(e) => {
                tracing::error!(error = %e, "footage export failed");
                Err(ExportFailure::Failed("the export could not be written; see the server's log".into()))
            }
        }
    }
}
