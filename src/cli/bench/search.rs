//! `bench-search`: N generated sightings (1,300 cameras, a read every 2 s), then searches
//! typed as an investigator might (look-alikes, last digits only, a digit wrong); p50/p99
//! and how often the plate meant was found.

use std::time::Instant;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_core::Sighting;
use vigil_ticketing::CaseStore;
use vigil_ticketing::sightings::SightingQuery;

use super::super::Context;

#[derive(clap::Args)]
pub struct BenchSearchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub sightings: u64,
    #[arg(long, default_value_t = 200)]
    pub queries: u32,
}

pub fn run(ctx: &Context, args: BenchSearchArgs) -> Result<()> {
    ctx.create_data()?;
    let store = ctx.open_store()?;
    ctx.runtime
        .block_on(bench_search(store, args.sightings, args.queries.max(1)))
}

/// A plate of the Vietnamese grammar, from a counter: cars `98A-123.45`, motorbikes
/// `99B1-123.45`.
pub(super) fn bench_plate(n: u64) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHKLMNPSTUVXYZ";
    let mut x = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |m: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^= x >> 33;
        x % m
    };
    let province = 11 + next(89);
    let letter = LETTERS[next(LETTERS.len() as u64) as usize] as char;
    let number = next(100_000);
    if next(3) == 0 {
        format!(
            "{province}{letter}{}-{:03}.{:02}",
            1 + next(9),
            number / 100,
            number % 100
        )
    } else {
        format!("{province}{letter}-{:03}.{:02}", number / 100, number % 100)
    }
}

/// What an investigator types: the plate with OCR look-alikes swapped in; a quarter of the
/// time only its last digits, a quarter with one digit wrong.
fn typed(plate: &str, n: u64) -> String {
    let swapped: String = plate
        .chars()
        .map(|c| match c {
            '1' if n.is_multiple_of(2) => 'l',
            '5' => 'S',
            '0' if n.is_multiple_of(3) => 'O',
            '8' if n % 2 == 1 => 'B',
            other => other,
        })
        .collect();
    match n % 4 {
        // The last digits only.
        3 => swapped
            .chars()
            .skip(swapped.len().saturating_sub(6))
            .collect(),
        // One digit read as another that is no look-alike (3 for 7, 7 for anything else):
        // found only by forgiving one wrong character.
        2 => {
            let mut chars: Vec<char> = swapped.chars().collect();
            if let Some(c) = chars.iter_mut().rev().find(|c| c.is_ascii_digit()) {
                *c = if *c == '7' { '3' } else { '7' };
            }
            chars.into_iter().collect()
        }
        _ => swapped,
    }
}

async fn bench_search(store: CaseStore, sightings: u64, queries: u32) -> Result<()> {
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let start: DateTime<Utc> = "2025-03-01T00:00:00Z".parse()?;
    let t = Instant::now();
    // Sighting n is the same in every run, so a bigger run adds to a smaller one's rows.
    let have = store.count_sightings(Some("bench")).await?;
    if have > sightings {
        bail!(
            "the database holds {have} benchmark sightings, more than --sightings {sightings}: \
             use a fresh --data folder or database"
        );
    }
    let bar = ProgressBar::new(sightings).with_style(
        ProgressStyle::with_template(
            "loading [{bar:40}] {pos}/{len} sightings, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_position(have);
    let mut batch = Vec::with_capacity(10_000);
    for n in have..sightings {
        batch.push(Sighting {
            sighting_id: uuid::Uuid::from_u128((0xbe7c_u128 << 64) | n as u128),
            camera_id: format!("cam-{}", n % 1300),
            plate: bench_plate(n),
            confidence: 0.9,
            vehicle_class: if n % 3 == 0 { "motorbike" } else { "car" }.into(),
            plate_colour: None,
            // 1,300 cameras, a read every few seconds each: a month of the province.
            seen_at: start + chrono::Duration::milliseconds((n * 2_000) as i64),
            source: "bench".into(),
            thumbnail: None,
            video_offset_ms: None,
        });
        if batch.len() == batch.capacity() || n + 1 == sightings {
            store.record_sightings(&batch).await?;
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "search {backend}: {} sightings added to {have} in {:.1} s",
        sightings - have,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    store.settle_sightings().await?;
    eprintln!(
        "search {backend}: indexes settled (vacuum/analyse, trigram merge) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Per kind of query (as `typed` makes them): times, and how often the plate meant was
    // among the results shown.
    const KINDS: [&str; 3] = [
        "whole plate, look-alikes",
        "a digit wrong",
        "last digits only",
    ];
    let kind_of = |q: u64| match q % 4 {
        2 => 1,
        3 => 2,
        _ => 0,
    };
    let mut times: Vec<f64> = Vec::new();
    let mut by_kind: [(Vec<f64>, u32); 3] = Default::default();
    for q in 0..queries as u64 {
        let n = (q * 7_919) % sightings.max(1);
        let query = SightingQuery {
            plate: typed(&bench_plate(n), q),
            limit: Some(100),
            ..Default::default()
        };
        let t = Instant::now();
        let found = store.search_sightings(&query).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        times.push(ms);
        let kind = &mut by_kind[kind_of(q)];
        kind.0.push(ms);
        kind.1 += found.iter().any(|f| f.sighting.plate == bench_plate(n)) as u32;
    }
    let pct = |times: &mut Vec<f64>, p: f64| {
        times.sort_by(f64::total_cmp);
        times
            .get(((times.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "search {backend}, {sightings} sightings, {queries} queries: p50 {:.1} ms, p99 {:.1} ms",
        pct(&mut times, 0.5),
        pct(&mut times, 0.99)
    );
    for (name, (times, hits)) in KINDS.iter().zip(by_kind.iter_mut()) {
        println!(
            "  {name}: p50 {:.1} ms, p99 {:.1} ms; the plate meant among the first 100 in {hits} of {}",
            pct(times, 0.5),
            pct(times, 0.99),
            times.len()
        );
    }
    store.close().await;
    Ok(())
}
