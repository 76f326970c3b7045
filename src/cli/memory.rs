//! This process's memory and the machine's, from `/proc` (Linux; elsewhere unknown).

/// A `Key:   1234 kB` line of a `/proc` file, in MiB.
fn proc_mib(file: &str, key: &str) -> Option<f64> {
    std::fs::read_to_string(file).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    })
}

/// Resident memory now.
pub fn resident_mib() -> Option<f64> {
    proc_mib("/proc/self/status", "VmRSS")
}

/// The most this process has had resident since it started.
pub fn peak_resident_mib() -> Option<f64> {
    proc_mib("/proc/self/status", "VmHWM")
}

/// What the machine can still give without swapping.
pub fn available_mib() -> Option<f64> {
    proc_mib("/proc/meminfo", "MemAvailable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_its_peak_is_at_least_now() {
        let now = resident_mib().expect("VmRSS on Linux");
        let peak = peak_resident_mib().expect("VmHWM on Linux");
        assert!(now > 1.0, "{now}");
        assert!(peak >= now - 1.0, "peak {peak} below now {now}");
        assert!(available_mib().expect("MemAvailable") > 0.0);
        assert_eq!(proc_mib("/proc/self/status", "NoSuchKey"), None);
        // A key is matched whole: "Vm" is no line's key.
        assert_eq!(proc_mib("/proc/self/status", "Vm"), None);
    }
}
