//! A short, seeded run of every fuzz target: the same inputs each time, so a failure here
//! is reproducible, and enough of them to reach the paths past parsing. Each run must find
//! no crash, accept every seed as it is, and refuse some mutations (a target that accepts
//! everything, or nothing, is not testing what it names).

use vigil_fuzzing::{Budget, Verdict, run, seeds, target, try_input};

fn short_run(name: &str, inputs: u64) {
    let t = target(name).expect("a target of that name");
    let dir = tempfile::tempdir().expect("a scratch folder");
    let seeds = seeds::seeds(name, dir.path()).expect("the target's seeds");
    for (i, seed) in seeds.iter().enumerate() {
        assert_eq!(
            try_input(t, seed),
            Ok(Verdict::Accepted),
            "{name}: seed {i} is not accepted as it is"
        );
    }
    let report = run(t, &seeds, Budget::Inputs(inputs), 0x5eed_0000 + inputs);
    let crashes: Vec<String> = report
        .crashes
        .iter()
        .take(5)
        .map(|c| {
            format!(
                "{} on {:?}",
                c.message,
                String::from_utf8_lossy(&c.input[..c.input.len().min(400)])
            )
        })
        .collect();
    assert!(
        crashes.is_empty(),
        "{name}: {} of {} inputs crashed, e.g.\n{}",
        report.crashes.len(),
        report.tried,
        crashes.join("\n")
    );
    assert_eq!(report.tried, inputs);
    assert!(report.rejected > 0, "{name}: no mutation was refused");
    assert!(report.accepted >= seeds.len() as u64, "{name}: {report:?}");
}

#[cfg(feature = "pipeline")]
#[test]
fn camera_configs_never_crash_the_loader_or_the_rules_they_configure() {
    short_run("camera_config", 1_500);
}

#[cfg(feature = "pipeline")]
#[test]
fn deployments_never_crash_the_loader() {
    short_run("deployment", 1_500);
}

#[cfg(feature = "pipeline")]
#[test]
fn model_manifests_never_crash_the_loader() {
    short_run("model_manifest", 3_000);
}

#[test]
fn plates_read_by_ocr_never_crash_the_grammar_and_normalise_to_a_fixed_point() {
    short_run("plate", 20_000);
}

#[test]
fn event_json_never_crashes_intake_and_what_it_accepts_survives_a_round_trip() {
    short_run("event_json", 5_000);
}

#[test]
fn evidence_manifests_never_crash_verification_and_what_verifies_stays_in_its_folder() {
    short_run("evidence_package", 3_000);
}

#[cfg(feature = "pipeline")]
#[test]
fn mp4_headers_never_crash_the_creation_time_reader() {
    short_run("mp4_creation_time", 5_000);
}

#[cfg(feature = "pipeline")]
#[test]
fn mutated_recordings_never_crash_or_hang_the_file_source() {
    short_run("file_source", 24);
}
