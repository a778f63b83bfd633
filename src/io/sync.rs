//! Camera stream bookkeeping without ROS: pairing images with camera_info by approximate
//! stamp (the worker's own slots do "newest frame wins").

use std::collections::VecDeque;

use crate::io::msgs::builtin_interfaces::Time;

/// Index of the candidate stamp nearest `stamp` with `|Δ| ≤ tolerance_ns` (ties: the later
/// candidate in the list, i.e. the newer one), or `None`.
pub fn nearest_within(stamp: Time, candidates: &[Time], tolerance_ns: i64) -> Option<usize> {
    let t = stamp.as_nanos();
    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (i, (c.as_nanos() - t).unsigned_abs()))
        .filter(|&(_, d)| d <= tolerance_ns.max(0) as u64)
        .min_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

/// Counters of a [`StampPairer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairStats {
    /// Pairs emitted.
    pub paired: u64,
    /// Images replaced by a newer image before any camera_info matched them.
    pub images_unmatched: u64,
}

/// Pairs images with camera_info messages whose stamps differ by at most a tolerance.
///
/// An image pairs at once with the nearest stored camera_info within tolerance; otherwise it
/// waits (only the newest waiting image is kept; a replaced one counts as unmatched) until a
/// camera_info within tolerance arrives. A newer image that pairs at once also supersedes
/// an older waiting one (counted as unmatched), so pairs never go back in time. The last [`StampPairer::INFO_HISTORY`] camera_infos
/// are kept, so an image can pair with one that came before or after it.
#[derive(Debug)]
pub struct StampPairer<I, C> {
    tolerance_ns: i64,
    pending: Option<(Time, I)>,
    infos: VecDeque<(Time, C)>,
    stats: PairStats,
}

impl<I, C: Clone> StampPairer<I, C> {
    /// camera_infos kept for pairing.
    pub const INFO_HISTORY: usize = 8;

    /// A pairer accepting `|stamp(image) − stamp(info)| ≤ tolerance_s` (negative or
    /// non-finite tolerances count as 0: exact stamps only).
    pub fn new(tolerance_s: f64) -> Self {
        StampPairer {
            tolerance_ns: Self::to_ns(tolerance_s),
            pending: None,
            infos: VecDeque::with_capacity(Self::INFO_HISTORY),
            stats: PairStats::default(),
        }
    }

    fn to_ns(tolerance_s: f64) -> i64 {
        if tolerance_s.is_finite() && tolerance_s > 0.0 {
            (tolerance_s * 1e9).round() as i64
        } else {
            0
        }
    }

    /// Change the tolerance; waiting images and stored camera_infos are kept.
    pub fn set_tolerance(&mut self, tolerance_s: f64) {
        self.tolerance_ns = Self::to_ns(tolerance_s);
    }

    /// Counters so far.
    pub fn stats(&self) -> PairStats {
        self.stats
    }

    /// Whether an image waits for a camera_info.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Offer an image; returns the pair if a stored camera_info matches.
    pub fn push_image(&mut self, stamp: Time, image: I) -> Option<(I, C)> {
        let stamps: Vec<Time> = self.infos.iter().map(|(t, _)| *t).collect();
        if let Some(i) = nearest_within(stamp, &stamps, self.tolerance_ns) {
            let info = self.infos[i].1.clone();
            self.stats.paired += 1;
            // A newer frame went through: an older waiting image is superseded.
            if self.pending.as_ref().is_some_and(|(t, _)| *t <= stamp) {
                self.pending = None;
                self.stats.images_unmatched += 1;
            }
            return Some((image, info));
        }
        if self.pending.replace((stamp, image)).is_some() {
            self.stats.images_unmatched += 1;
        }
        None
    }

    /// The image still waiting for a camera_info, if any, taken and counted as unmatched (at
    /// the end of a stream, so that every image is either paired or counted).
    pub fn take_pending(&mut self) -> Option<(Time, I)> {
        let pending = self.pending.take()?;
        self.stats.images_unmatched += 1;
        Some(pending)
    }

    /// Offer a camera_info; returns the waiting image paired with it if it matches.
    pub fn push_info(&mut self, stamp: Time, info: C) -> Option<(I, C)> {
        if self.infos.len() == Self::INFO_HISTORY {
            self.infos.pop_front();
        }
        self.infos.push_back((stamp, info.clone()));
        let (pending_stamp, _) = self.pending.as_ref()?;
        nearest_within(*pending_stamp, &[stamp], self.tolerance_ns)?;
        let (_, image) = self.pending.take()?;
        self.stats.paired += 1;
        Some((image, info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Time {
        Time::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn nearest_within_picks_the_closest_inside_tolerance() {
        let c = [t(100), t(133), t(166)];
        assert_eq!(nearest_within(t(130), &c, 20_000_000), Some(1));
        assert_eq!(nearest_within(t(160), &c, 20_000_000), Some(2));
        assert_eq!(nearest_within(t(200), &c, 20_000_000), None); // 34 ms from the nearest
        assert_eq!(nearest_within(t(200), &c, 34_000_000), Some(2)); // bound is inclusive
                                                                     // Equal distance: the newer (later in the list) wins.
        assert_eq!(
            nearest_within(t(150), &[t(140), t(160)], 20_000_000),
            Some(1)
        );
        assert_eq!(nearest_within(t(1), &[], 1), None);
    }

    #[test]
    fn pairs_info_before_or_after_the_image_and_counts_unmatched() {
        let mut p: StampPairer<&str, u32> = StampPairer::new(0.005);
        // Info first, image 3 ms later: pairs at once.
        assert_eq!(p.push_info(t(1000), 1), None);
        assert_eq!(p.push_image(t(1003), "a"), Some(("a", 1)));
        // Image first (no info within 5 ms): waits; its info arrives: pairs.
        assert_eq!(p.push_image(t(1100), "b"), None);
        assert_eq!(p.push_info(t(1100), 2), Some(("b", 2)));
        // An image nobody matches is replaced by the next one: counted.
        assert_eq!(p.push_image(t(1200), "c"), None);
        assert_eq!(p.push_image(t(1233), "d"), None);
        assert_eq!(p.push_info(t(1210), 3), None); // 23 ms from "d": no
        assert_eq!(p.push_info(t(1236), 4), Some(("d", 4)));
        assert_eq!(
            p.stats(),
            PairStats {
                paired: 3,
                images_unmatched: 1
            }
        );
    }

    #[test]
    fn info_history_is_bounded() {
        let mut p: StampPairer<u8, i64> = StampPairer::new(0.0);
        for k in 0..20 {
            p.push_info(t(k), k);
        }
        // Only the last 8 (12..19) are kept: exact stamps 5 and 12 → miss and hit; the hit
        // supersedes the waiting older image.
        assert_eq!(p.push_image(t(5), 0), None);
        assert_eq!(p.push_image(t(12), 1), Some((1, 12)));
        assert_eq!(p.stats().images_unmatched, 1);
        assert_eq!(p.push_info(t(5), 5), None); // the stamp-5 image is gone
    }
}
