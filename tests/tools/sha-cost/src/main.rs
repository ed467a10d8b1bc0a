//! `sha-cost [MIB]`: hashes MIB MiB (default 1024) of a 256 KiB buffer — the size of one
//! fill chunk — with sha2, and prints the CPU seconds per GB (process CPU time, from
//! /proc/self/stat, so that a busy shared machine does not inflate it as wall time would).

use sha2::{Digest, Sha256};
use std::time::Instant;

/// One fill chunk (regmirror's `FILL_BUF`).
const CHUNK: usize = 256 * 1024;

/// utime + stime of this process in seconds (clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("MiB"))
        .unwrap_or(1024);
    let buf: Vec<u8> = (0..CHUNK).map(|i| (i * 31 + 7) as u8).collect();
    let chunks = mib * (1 << 20) / CHUNK;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut h = Sha256::new();
    for _ in 0..chunks {
        h.update(&buf);
    }
    let out = h.finalize();
    let (cpu, wall) = (cpu_seconds() - c0, t0.elapsed().as_secs_f64());
    let gb = (chunks * CHUNK) as f64 / 1e9;
    println!(
        "bytes={} cpu_s={cpu:.2} wall_s={wall:.2} cpu_s_per_gb={:.3} mb_per_s={:.0} first_byte={:02x}",
        chunks * CHUNK,
        cpu / gb,
        gb * 1000.0 / cpu.max(0.01),
        out[0]
    );
}
