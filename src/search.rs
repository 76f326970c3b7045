//! `vigil search`: plate search from the command line, audited like the web search.

use anyhow::Result;
use vigil_pipeline::evidence::TIME_ZONE;
use vigil_ticketing::CaseStore;
use vigil_ticketing::audit::AuditRecord;
use vigil_ticketing::sightings::SightingQuery;

pub async fn run(store: &CaseStore, query: &SightingQuery, json: bool) -> Result<()> {
    // Who searched: the account running the command (the CLI has no login of its own).
    let actor = format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into())
    );
    let found = store.search_sightings(query).await;
    store
        .audit(
            chrono::Utc::now(),
            AuditRecord {
                actor: &actor,
                action: "plate_search",
                target: Some(query.plate.clone()),
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
        "SCORE", "PLATE", "SEEN (Asia/Ho_Chi_Minh)", "CAMERA", "VEHICLE", "CONF"
    );
    for f in &found {
        let s = &f.sighting;
        println!(
            "{:<6.2} {:<13} {:<28} {:<14} {:<10} {:<6.2} {}",
            f.score,
            s.plate,
            s.seen_at
                .with_timezone(&TIME_ZONE)
                .format("%Y-%m-%d %H:%M:%S %:z")
                .to_string(),
            s.camera_id,
            s.vehicle_class,
            s.confidence,
            s.thumbnail.as_deref().unwrap_or("-")
        );
    }
    eprintln!("{} sighting(s)", found.len());
    Ok(())
}
