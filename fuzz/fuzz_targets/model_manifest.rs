#![no_main]
//! libFuzzer entry for the `model_manifest` target (fuzzing/src/targets.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vigil_fuzzing::targets::model_manifest(data);
});
