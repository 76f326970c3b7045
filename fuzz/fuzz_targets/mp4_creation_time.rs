#![no_main]
//! libFuzzer entry for the `mp4_creation_time` target (fuzzing/src/targets.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = vigil_fuzzing::targets::mp4_creation_time(data);
});
