//! Tracking quality measures and the keyframe promotion rule.

use super::{Correspondence, TrackQuality, TrackerConfig};

/// Fraction of the cells of a `grid × grid` partition of a `width × height` image that hold
/// at least one inlier's keyframe point `p0` (pixel centres at integers, so pixel x spans
/// `[x − 0.5, x + 0.5)`). A proxy for the overlap of the two views that, unlike a match
/// count, does not depend on how densely the matcher samples.
pub fn inlier_coverage(
    correspondences: &[Correspondence],
    width: u32,
    height: u32,
    grid: u32,
) -> f64 {
    if width == 0 || height == 0 || grid == 0 {
        return 0.0;
    }
    let g = grid as usize;
    let mut cells = vec![false; g * g];
    for c in correspondences.iter().filter(|c| c.inlier) {
        let p = c.pixels.p0;
        if !p.is_finite() {
            continue;
        }
        let cell = |v: f64, size: u32| {
            let f = ((v + 0.5) / size as f64 * grid as f64).floor();
            f.clamp(0.0, (grid - 1) as f64) as usize
        };
        cells[cell(p.y, height) * g + cell(p.x, width)] = true;
    }
    cells.iter().filter(|&&c| c).count() as f64 / (g * g) as f64
}

/// Median of `|p1 − p0|` over the inliers, pixels (0 without inliers).
pub fn median_inlier_flow(correspondences: &[Correspondence]) -> f64 {
    let mut flow: Vec<f64> = correspondences
        .iter()
        .filter(|c| c.inlier)
        .map(|c| c.pixels.p0.distance(&c.pixels.p1))
        .filter(|d| d.is_finite())
        .collect();
    if flow.is_empty() {
        return 0.0;
    }
    flow.sort_by(f64::total_cmp);
    let n = flow.len();
    if n % 2 == 1 {
        flow[n / 2]
    } else {
        0.5 * (flow[n / 2 - 1] + flow[n / 2])
    }
}

/// Why a tracked frame should become the new keyframe, or `None` to keep tracking against
/// the current one. Criteria (each off at 0): inliers below `keyframe_min_inliers`, inlier
/// ratio below `keyframe_min_inlier_ratio`, coverage below `keyframe_min_coverage`, median
/// flow above `keyframe_max_median_flow_px`, age at or above `keyframe_max_age_s` /
/// `keyframe_max_age_frames`. The first that applies is reported.
pub fn promotion_reason(q: &TrackQuality, cfg: &TrackerConfig) -> Option<String> {
    if cfg.keyframe_min_inliers > 0 && q.inliers < cfg.keyframe_min_inliers as usize {
        return Some(format!(
            "inliers {} < tracker.keyframe_min_inliers {}",
            q.inliers, cfg.keyframe_min_inliers
        ));
    }
    if cfg.keyframe_min_inlier_ratio > 0.0 && q.inlier_ratio < cfg.keyframe_min_inlier_ratio {
        return Some(format!(
            "inlier ratio {:.3} < tracker.keyframe_min_inlier_ratio {}",
            q.inlier_ratio, cfg.keyframe_min_inlier_ratio
        ));
    }
    if cfg.keyframe_min_coverage > 0.0 && q.coverage < cfg.keyframe_min_coverage {
        return Some(format!(
            "coverage {:.3} < tracker.keyframe_min_coverage {}",
            q.coverage, cfg.keyframe_min_coverage
        ));
    }
    if cfg.keyframe_max_median_flow_px > 0.0 && q.median_flow_px > cfg.keyframe_max_median_flow_px {
        return Some(format!(
            "median flow {:.1} px > tracker.keyframe_max_median_flow_px {}",
            q.median_flow_px, cfg.keyframe_max_median_flow_px
        ));
    }
    if cfg.keyframe_max_age_s > 0.0 && q.keyframe_age_s >= cfg.keyframe_max_age_s {
        return Some(format!(
            "keyframe age {:.3} s ≥ tracker.keyframe_max_age_s {}",
            q.keyframe_age_s, cfg.keyframe_max_age_s
        ));
    }
    if cfg.keyframe_max_age_frames > 0 && q.keyframe_age_frames >= cfg.keyframe_max_age_frames {
        return Some(format!(
            "{} frames tracked ≥ tracker.keyframe_max_age_frames {}",
            q.keyframe_age_frames, cfg.keyframe_max_age_frames
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{PixelMatch, PixelPoint};

    fn c(x0: f64, y0: f64, dx: f64, inlier: bool) -> Correspondence {
        Correspondence {
            pixels: PixelMatch {
                p0: PixelPoint::new(x0, y0),
                p1: PixelPoint::new(x0 + dx, y0),
                confidence: 1.0,
            },
            inlier,
        }
    }

    #[test]
    fn coverage_counts_cells_with_inliers() {
        // 100×100 image, 4×4 grid of 25 px cells: pixel 24 is in cell 0 (spans to 24.5),
        // pixel 25 in cell 1; outliers do not count; points outside clamp to edge cells.
        let m = [
            c(24.0, 0.0, 0.0, true),
            c(25.0, 0.0, 0.0, true),
            c(60.0, 60.0, 0.0, false),
            c(-3.0, 200.0, 0.0, true),
        ];
        assert_eq!(inlier_coverage(&m, 100, 100, 4), 3.0 / 16.0);
        assert_eq!(inlier_coverage(&m, 100, 100, 1), 1.0);
        assert_eq!(inlier_coverage(&[], 100, 100, 4), 0.0);
    }

    #[test]
    fn median_flow_of_inliers() {
        let m = [
            c(0.0, 0.0, 1.0, true),
            c(0.0, 0.0, 3.0, true),
            c(0.0, 0.0, 100.0, false),
        ];
        assert_eq!(median_inlier_flow(&m), 2.0);
        assert_eq!(median_inlier_flow(&m[..1]), 1.0);
        assert_eq!(median_inlier_flow(&m[2..]), 0.0);
    }

    #[test]
    fn each_criterion_promotes_and_zero_disables_it() {
        let off = TrackerConfig {
            keyframe_min_inliers: 0,
            keyframe_min_inlier_ratio: 0.0,
            keyframe_min_coverage: 0.0,
            keyframe_max_median_flow_px: 0.0,
            keyframe_max_age_s: 0.0,
            keyframe_max_age_frames: 0,
            ..Default::default()
        };
        let q = TrackQuality {
            matches: 100,
            inliers: 40,
            inlier_ratio: 0.4,
            coverage: 0.3,
            median_flow_px: 30.0,
            keyframe_age_s: 2.0,
            keyframe_age_frames: 20,
        };
        assert_eq!(promotion_reason(&q, &off), None);
        let cases = [
            (
                TrackerConfig {
                    keyframe_min_inliers: 41,
                    ..off.clone()
                },
                "keyframe_min_inliers",
            ),
            (
                TrackerConfig {
                    keyframe_min_inlier_ratio: 0.5,
                    ..off.clone()
                },
                "inlier_ratio",
            ),
            (
                TrackerConfig {
                    keyframe_min_coverage: 0.31,
                    ..off.clone()
                },
                "coverage",
            ),
            (
                TrackerConfig {
                    keyframe_max_median_flow_px: 29.0,
                    ..off.clone()
                },
                "median_flow",
            ),
            (
                TrackerConfig {
                    keyframe_max_age_s: 2.0,
                    ..off.clone()
                },
                "max_age_s",
            ),
            (
                TrackerConfig {
                    keyframe_max_age_frames: 20,
                    ..off.clone()
                },
                "max_age_frames",
            ),
        ];
        for (cfg, field) in cases {
            let r = promotion_reason(&q, &cfg).unwrap_or_default();
            assert!(r.contains(field), "{field}: {r}");
        }
        // Just inside every limit: no promotion.
        let inside = TrackerConfig {
            keyframe_min_inliers: 40,
            keyframe_min_inlier_ratio: 0.4,
            keyframe_min_coverage: 0.3,
            keyframe_max_median_flow_px: 30.0,
            keyframe_max_age_s: 2.5,
            keyframe_max_age_frames: 21,
            ..off
        };
        assert_eq!(promotion_reason(&q, &inside), None);
    }
}
