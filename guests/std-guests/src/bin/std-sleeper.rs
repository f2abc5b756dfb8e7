//! std-sleeper: sleeps SECONDS (default 60), then prints how long the monotonic and the wall
//! clock say it slept, in whole seconds.

use std::time::{Duration, Instant, SystemTime};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let (mono, wall) = (Instant::now(), SystemTime::now());
    std::thread::sleep(Duration::from_secs(secs));
    let walled = wall.elapsed().unwrap_or_default();
    println!(
        "slept {}s by the monotonic clock, {}s by the wall clock",
        mono.elapsed().as_secs(),
        walled.as_secs()
    );
}
