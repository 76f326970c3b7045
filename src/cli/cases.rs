//! `vigil cases`: the recorded cases, or those past a legal deadline.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;
use vigil_core::TIME_ZONE;
use vigil_core::local_time::{TIME_ZONE_NAME, local_seconds};

use super::{Context, thousands};

#[derive(clap::Args)]
pub struct CasesArgs {
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only cases past a legal deadline: owner identification (10 days after
    /// detection) or an unresolved notice (20 days after it was sent).
    #[arg(long)]
    pub overdue: bool,
}

pub fn run(ctx: &Context, args: CasesArgs) -> Result<()> {
    if args.overdue {
        list_overdue(ctx, args.json)
    } else {
        list(ctx, args.json)
    }
}

/// Every case, as a table or one JSON object a line.
pub fn list(ctx: &Context, json: bool) -> Result<()> {
    if ctx.database.is_none() && !ctx.data.database().exists() {
        println!(
            "no cases yet (no database at {})",
            ctx.data.database().display()
        );
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let store = ctx.open_store()?;
    // Where this data folder files the event's package.
    let package = |event_id: &str| match event_id.parse() {
        Ok(id) => ctx.data.package(id).display().to_string(),
        Err(_) => format!("(event id {event_id} names no package)"),
    };
    let cases = ctx.runtime.block_on(store.list())?;
    if json {
        for c in &cases {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "id": c.id, "event_id": c.event_id, "camera_id": c.camera_id, "violation": c.violation,
                    "plate": c.plate, "plate_confidence": c.plate_confidence, "plate_uncertain": c.plate_uncertain, "vehicle_class": c.vehicle_class,
                    "occurred_at": c.occurred_at, "evidence_dir": package(&c.event_id), "state": c.state,
                    "fine": c.fine,
                })
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<5} {:<26} {:<12} {:<10} {:<12} {:>5} {:<9} {:<16} {:<33} EVIDENCE",
        "CASE",
        format!("TIME ({TIME_ZONE_NAME})"),
        "CAMERA",
        "VIOLATION",
        "PLATE",
        "CONF",
        "VEHICLE",
        "STATE",
        "FINE (VND), POINTS"
    )?;
    for c in &cases {
        let fine = c
            .fine
            .as_ref()
            .map(|f| {
                format!(
                    "{}–{} −{} ({})",
                    thousands(f.min_vnd),
                    thousands(f.max_vnd),
                    f.points,
                    f.article
                )
            })
            .unwrap_or_else(|| "(none in schedule)".into());
        writeln!(
            out,
            "{:<5} {:<26} {:<12} {:<10} {:<12} {:>5} {:<9} {:<16} {:<33} {}",
            c.id,
            local_seconds(c.occurred_at),
            c.camera_id,
            c.violation,
            match (&c.plate, c.plate_uncertain) {
                (Some(p), true) => format!("{p}?"),
                (Some(p), false) => p.clone(),
                (None, _) => "(unread)".into(),
            },
            c.plate_confidence
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into()),
            c.vehicle_class,
            c.state,
            fine,
            package(&c.event_id)
        )?;
    }
    writeln!(out, "{} case(s)", cases.len())?;
    Ok(())
}

/// The cases past a legal deadline.
fn list_overdue(ctx: &Context, json: bool) -> Result<()> {
    let store = ctx.open_store()?;
    let overdue = ctx.runtime.block_on(store.overdue(Utc::now()))?;
    let mut out = std::io::stdout().lock();
    if json {
        for o in &overdue {
            writeln!(out, "{}", serde_json::to_string(o)?)?;
        }
        return Ok(());
    }
    if overdue.is_empty() {
        writeln!(out, "no case is past a deadline")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<6} {:<14} {:<17} {:<22} DUE ({TIME_ZONE_NAME})",
        "CASE", "PLATE", "STATE", "DEADLINE"
    )?;
    for o in &overdue {
        writeln!(
            out,
            "{:<6} {:<14} {:<17} {:<22} {}",
            o.case_id,
            o.plate.as_deref().unwrap_or("-"),
            o.state,
            o.deadline,
            o.due_at.with_timezone(&TIME_ZONE).format("%Y-%m-%d %H:%M")
        )?;
    }
    Ok(())
}
