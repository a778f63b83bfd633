//! Resident memory of this process (Linux `/proc/self/status`), sampled by `imd replay` per
//! processed frame: the library reports progress, the binary reads `/proc`.

/// Resident memory of this process in MiB (`VmRSS`; `None` where `/proc` has none).
pub fn resident_mib() -> Option<f64> {
    proc_status_mib("VmRSS:")
}

/// Peak resident memory of this process in MiB (`VmHWM`; `None` where `/proc` has none).
pub fn peak_resident_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

fn proc_status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// (processed frames, resident MiB) once every `every` processed frames.
#[derive(Debug)]
pub struct MemorySampler {
    every: u64,
    next: u64,
    /// The samples so far.
    pub samples: Vec<(u64, f64)>,
}

impl MemorySampler {
    /// Sample at `every`, `2·every`, … processed frames (0 = never).
    pub fn new(every: u64) -> Self {
        MemorySampler {
            every,
            next: every,
            samples: Vec::new(),
        }
    }

    /// `processed` frames are done: sample when a multiple of `every` was reached since the
    /// last sample (the count can step past it between two calls).
    pub fn observe(&mut self, processed: u64) {
        if self.every == 0 || processed < self.next {
            return;
        }
        if let Some(mib) = resident_mib() {
            self.samples.push((processed, mib));
        }
        self.next = (processed / self.every + 1) * self.every;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_once_per_multiple() {
        let mut m = MemorySampler::new(10);
        for n in [0, 5, 10, 10, 11, 25, 29, 30] {
            m.observe(n);
        }
        if resident_mib().is_some() {
            let at: Vec<u64> = m.samples.iter().map(|s| s.0).collect();
            assert_eq!(at, [10, 25, 30]);
        }
        let mut never = MemorySampler::new(0);
        never.observe(100);
        assert!(never.samples.is_empty());
    }
}
