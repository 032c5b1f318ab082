//! The bandwidth measurement's buffer is left out of the peak memory that bench rows report
//! (a test binary of its own: no other test allocates meanwhile).

use hakaru_runner::bench::{memory_bandwidth, peak_rss};

#[test]
fn bandwidth_buffer_is_left_out_of_the_peak() {
    let Some(before) = peak_rss() else {
        eprintln!("skipped: no VmHWM on this system");
        return;
    };
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("skipped: /proc/self/clear_refs cannot be written here");
        return;
    }
    let buffer = 256 << 20;
    assert!(memory_bandwidth(buffer, 2, 1) > 0.0);
    let after = peak_rss().unwrap();
    assert!(
        after >= before,
        "the peak before is kept: {before} -> {after}"
    );
    assert!(
        after < before + buffer as u64 / 2,
        "a {buffer}-byte buffer raised the peak from {before} to {after}"
    );
}
