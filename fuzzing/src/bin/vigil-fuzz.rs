//! A long fuzz run: `vigil-fuzz <target|all> --seconds N [--seed S] [--crashes DIR]`.
//! Prints, per target, the inputs tried, accepted and refused, and each crash (its input
//! kept under DIR, named by its hash, to be replayed with `--replay FILE`); or, with
//! `--seeds-to DIR`, writes the seeds as a starting corpus for libFuzzer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use vigil_fuzzing::{Budget, all, target, targets::crash_path};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut which = None;
    let mut seconds = 60u64;
    let mut seed = 1u64;
    let mut crashes = PathBuf::from("target/fuzz-crashes");
    let mut replay = None;
    let mut seeds_to = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => seconds = value("--seconds")?.parse().context("--seconds")?,
            "--seed" => seed = value("--seed")?.parse().context("--seed")?,
            "--crashes" => crashes = value("--crashes")?.into(),
            "--replay" => replay = Some(PathBuf::from(value("--replay")?)),
            "--seeds-to" => seeds_to = Some(PathBuf::from(value("--seeds-to")?)),
            "-h" | "--help" => {
                println!(
                    "vigil-fuzz <target|all> [--seconds N] [--seed S] [--crashes DIR] [--replay FILE] [--seeds-to DIR]\n\
                     targets: {}",
                    all().map(|t| t.name).collect::<Vec<_>>().join(", ")
                );
                return Ok(());
            }
            name if which.is_none() => which = Some(name.to_string()),
            other => bail!("unexpected argument {other}"),
        }
    }
    let which = which.context("name a target, or `all` (see --help)")?;
    let chosen: Vec<_> = if which == "all" {
        all().collect()
    } else {
        vec![target(&which).with_context(|| format!("no fuzz target is called {which}"))?]
    };
    if let Some(dir) = seeds_to {
        // A starting corpus for libFuzzer (fuzz/corpus/<target>/), one file per seed.
        let scratch = tempfile::tempdir()?;
        for t in chosen {
            let corpus = dir.join(t.name);
            std::fs::create_dir_all(&corpus)?;
            for (i, seed) in vigil_fuzzing::seeds::seeds(t.name, scratch.path())?
                .iter()
                .enumerate()
            {
                std::fs::write(corpus.join(format!("seed-{i}")), seed)?;
            }
        }
        return Ok(());
    }
    if let Some(file) = replay {
        let input = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        for t in chosen {
            println!("{}: {:?}", t.name, vigil_fuzzing::try_input(t, &input));
        }
        return Ok(());
    }
    std::fs::create_dir_all(&crashes).with_context(|| format!("creating {}", crashes.display()))?;
    let scratch = tempfile::tempdir()?;
    let mut found = 0;
    println!("target               seconds      tried   accepted   refused  crashes");
    for t in chosen {
        let seeds = vigil_fuzzing::seeds::seeds(t.name, scratch.path())?;
        let report =
            vigil_fuzzing::run(t, &seeds, Budget::Time(Duration::from_secs(seconds)), seed);
        println!(
            "{:<20} {:>7} {:>10} {:>10} {:>9} {:>8}",
            t.name,
            seconds,
            report.tried,
            report.accepted,
            report.rejected,
            report.crashes.len()
        );
        for crash in &report.crashes {
            let path = crash_path(&crashes, t.name, &crash.input);
            std::fs::write(&path, &crash.input)?;
            println!("  crash: {} (input {})", crash.message, path.display());
        }
        found += report.crashes.len();
    }
    if found > 0 {
        bail!("{found} crashing inputs");
    }
    Ok(())
}
