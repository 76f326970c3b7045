//! `vigil eval`: the pipeline over a scenario suite, scored against its ground truth.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vigil_pipeline::run::eval::{Score, find_scenarios, run_scenario, scenario_camera};

use super::Context;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Suite folder: truth files (*.json) here or in its generated/ folder.
    #[arg(default_value = "fixtures/scenarios")]
    pub suite: PathBuf,
    /// Print {"rules": {...}, "plates": {...}} as JSON.
    #[arg(long)]
    pub json: bool,
    /// Look at frames as `vigil run` does with motion gating: skip still frames and
    /// detect only in the changed region.
    #[arg(long)]
    pub motion_gating: bool,
    /// Fit every scenario's frames to this longest side (a multiple of 32) for the vehicle
    /// detector, overriding the cameras' `detector_size`.
    #[arg(long)]
    pub detector_size: Option<u32>,
}

pub fn run(ctx: &Context, args: EvalArgs) -> Result<()> {
    let (suite, json, gating) = (args.suite.as_path(), args.json, args.motion_gating);
    if let Some(size) = args.detector_size
        && !((32..=4096).contains(&size) && size % 32 == 0)
    {
        bail!("--detector-size {size} is not a multiple of 32 within 32..=4096");
    }
    let scenarios = find_scenarios(suite)
        .with_context(|| format!("cannot read the scenario suite {}", suite.display()))?;
    if scenarios.is_empty() {
        bail!(
            "no scenarios in {} (truth files *.json, here or in generated/): run scripts/setup to generate them",
            suite.display()
        );
    }
    // Every model the scenarios' cameras need, loaded and tried before the first video.
    let cameras = scenarios
        .iter()
        .map(|path| scenario_camera(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut models = ctx.load_models_for(&cameras)?;
    let models = &mut models;
    let bar = ProgressBar::new(scenarios.len() as u64).with_style(
        ProgressStyle::with_template("{prefix:.bold} [{bar:40}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("eval");
    if json {
        // The JSON goes to stdout alone; the bar stays on stderr where a terminal shows it.
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    let mut total = Score::default();
    for (i, path) in scenarios.iter().enumerate() {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (score, _) =
            run_scenario(models, path, gating, args.detector_size, |pts, duration| {
                let share = duration
                    .map(|d| pts.as_secs_f64() / d.as_secs_f64().max(0.001))
                    .unwrap_or(0.0);
                bar.set_message(format!("{name} {:>3.0}%", share * 100.0));
            })?;
        total.add(&score);
        bar.set_position(i as u64 + 1);
    }
    bar.finish_and_clear();
    let report = total.report();
    if json {
        // Which engine ran the models goes with the figures: they differ by engine.
        let mut json = serde_json::to_value(&report)?;
        json["engine"] = models.backend().to_string().into();
        println!("{}", serde_json::to_string(&json)?);
        return Ok(());
    }
    println!(
        "{} scenarios in {}, models run by {}",
        scenarios.len(),
        suite.display(),
        models.backend()
    );
    let l = &total.looks;
    println!(
        "frames analysed: {} whole, {} in their changed region only, {} followed between detections away from the rules' geometry, {} skipped as still (motion gating {})",
        l.whole,
        l.region,
        l.coasted,
        l.skipped,
        if gating { "on" } else { "off" }
    );
    println!();
    println!(
        "{:<18} {:>9} {:>7} {:>8}   (tp / fp / fn)",
        "rule", "precision", "recall", "support"
    );
    for (rule, r) in &report.rules {
        let t = &total.rules[rule];
        println!(
            "{:<18} {:>9.3} {:>7.3} {:>8}   ({} / {} / {})",
            rule,
            r.precision,
            r.recall,
            r.support,
            t.true_positives,
            t.false_positives,
            t.false_negatives
        );
    }
    println!();
    let p = &total.plates;
    println!(
        "plates read exactly: clear {:.3} ({} of {}), degraded {:.3} ({} of {})",
        report.plates.clear,
        p.clear_exact,
        p.clear,
        report.plates.degraded,
        p.degraded_exact,
        p.degraded
    );
    println!(
        "wrong plate reads: {} (highest confidence {:.2}); cases carrying another vehicle's plate: {}",
        p.wrong, p.wrong_max_confidence, p.other_vehicles
    );
    let threshold = vigil_ticketing::db::DEFAULT_PLATE_CERTAIN_AT;
    println!(
        "at the review threshold {threshold:.2}: {} plates go to review as read, {} of them wrong",
        p.reliability.right_at_or_above(threshold) + p.reliability.wrong_at_or_above(threshold),
        p.reliability.wrong_at_or_above(threshold)
    );
    println!("plate confidence → share right:");
    for line in p.reliability.table() {
        println!("  {line}");
    }
    let id = &total.identity;
    println!(
        "identities: {} vehicle-frames followed, {} switches (a vehicle's track replaced), {} jumps (a track moved to another vehicle)",
        id.matched, id.switches, id.jumps
    );
    if !total.misses.is_empty() {
        println!();
        println!("misses:");
        for m in &total.misses {
            println!("  {m}");
        }
    }
    Ok(())
}
