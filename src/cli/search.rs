//! `vigil search`: plate search from the command line, audited like the web search.

use anyhow::Result;
use chrono::DateTime;
use vigil_core::local_time::{TIME_ZONE_NAME, local_seconds};
use vigil_ticketing::CaseStore;
use vigil_ticketing::audit::AuditRecord;
use vigil_ticketing::sightings::SightingQuery;

use super::Context;

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Whole or partial plate, as typed (e.g. 98A-l23.4S).
    pub plate: String,
    #[arg(long)]
    pub camera: Option<String>,
    /// Vehicle class (car, bus, motorbike, ...).
    #[arg(long)]
    pub class: Option<String>,
    /// Only sightings at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<chrono::FixedOffset>>,
    /// Only sightings at or before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<chrono::FixedOffset>>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per sighting.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: SearchArgs) -> Result<()> {
    let store = ctx.open_store()?;
    let query = SightingQuery {
        plate: args.plate,
        camera_id: args.camera,
        vehicle_class: args.class,
        from: args.from.map(|t| t.to_utc()),
        to: args.to.map(|t| t.to_utc()),
        limit: Some(args.limit),
    };
    ctx.runtime.block_on(search(&store, &query, args.json))
}

/// Who acts from the command line: the account running it (the CLI has no login of its own).
pub fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

async fn search(store: &CaseStore, query: &SightingQuery, json: bool) -> Result<()> {
    let actor = cli_actor();
    let found = store.search_sightings(query).await;
    store
        .audit(
            chrono::Utc::now(),
            AuditRecord {
                actor: &actor,
                action: "plate_search",
                target: Some(vigil_ticketing::sightings::shown(&query.plate)),
                detail: Some(serde_json::json!({
                    "camera": query.camera_id,
                    "class": query.vehicle_class,
                    "from": query.from,
                    "to": query.to,
                    "results": found.as_ref().map(|f| f.len()).ok(),
                })),
                ..Default::default()
            },
        )
        .await?;
    let found = found?;
    if json {
        for f in &found {
            println!("{}", serde_json::to_string(f)?);
        }
        return Ok(());
    }
    println!(
        "{:<6} {:<13} {:<28} {:<14} {:<10} {:<6} THUMBNAIL",
        "SCORE",
        "PLATE",
        format!("SEEN ({TIME_ZONE_NAME})"),
        "CAMERA",
        "VEHICLE",
        "CONF"
    );
    for f in &found {
        let s = &f.sighting;
        println!(
            "{:<6.2} {:<13} {:<28} {:<14} {:<10} {:<6.2} {}",
            f.score,
            s.plate,
            local_seconds(s.seen_at),
            s.camera_id,
            s.vehicle_class,
            s.confidence,
            s.thumbnail.as_deref().unwrap_or("-")
        );
    }
    eprintln!("{} sighting(s)", found.len());
    Ok(())
}
