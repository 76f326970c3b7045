#![no_main]
//! libFuzzer entry for the `camera_config` target (fuzzing/src/targets.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vigil_fuzzing::targets::camera_config(data);
});
