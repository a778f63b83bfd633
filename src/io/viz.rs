//! Match visualization: the two images side by side, every match a small dot at both ends and
//! a readable subset joined by lines.
//!
//! Layout: image 0 at the left (x 0..w0), image 1 to its right (x w0..w0+w1), both top-aligned
//! on a black canvas of height max(h0, h1). Pixel coordinates follow
//! [`crate::geometry::PixelPoint`] (origin at the centre of the top-left pixel), so a point
//! is drawn on pixel `(round(x), round(y))`.
//!
//! Hundreds of full-width lines bury both photos, so (as the matcher demos people know do) only
//! [`VizOptions::max_lines`] matches get a line: image 0 is cut into a grid of about that many
//! cells and each cell's best inlier is drawn (most confident, or smallest ground-truth error),
//! 1 px wide and blended over the photos. Every match gets a dot at both ends: inliers (or
//! every match, without flags) in their colour, radius 1, outliers as single grey pixels.
//! Colours ([`MatchColors`]): by confidence ([`confidence_color`]: red → yellow → green as it
//! goes 0 → 0.5 → 1), or by ground-truth error when known ([`error_color`]). The cost is
//! bounded by the match count plus `max_lines` line lengths.

use image::{Rgb, RgbImage};

use crate::geometry::PixelMatch;

/// Colour of outliers.
pub const OUTLIER_COLOR: Rgb<u8> = Rgb([128, 128, 128]);

/// Lines drawn by default: enough to show the flow, few enough to see the photos.
pub const DEFAULT_MAX_LINES: usize = 100;

/// Opacity of the lines over the photos.
const LINE_ALPHA: f32 = 0.75;

/// How the matches are coloured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MatchColors<'a> {
    /// By the matcher's confidence ([`confidence_color`]).
    Confidence,
    /// By each match's ground-truth error in pixels ([`error_color`] with `threshold_px`);
    /// a match without an entry (shorter slice) or with a non-finite error is red.
    GroundTruthError {
        /// Per match, its error against ground truth, pixels.
        errors_px: &'a [f64],
        /// The error at which a match counts as wrong (red).
        threshold_px: f64,
    },
}

/// What [`draw_matches`] draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VizOptions<'a> {
    /// Most matches joined by a line (0: dots only).
    pub max_lines: usize,
    /// Colouring.
    pub colors: MatchColors<'a>,
}

impl Default for VizOptions<'_> {
    fn default() -> Self {
        VizOptions {
            max_lines: DEFAULT_MAX_LINES,
            colors: MatchColors::Confidence,
        }
    }
}

/// Red (0) → yellow (0.5) → green (1), linear in each half; confidence is clamped to [0, 1]
/// and NaN counts as 0. Channel values round to nearest.
pub fn confidence_color(confidence: f32) -> Rgb<u8> {
    let c = if confidence.is_nan() {
        0.0
    } else {
        confidence.clamp(0.0, 1.0)
    };
    let to8 = |v: f32| (v * 255.0).round() as u8;
    if c <= 0.5 {
        Rgb([255, to8(2.0 * c), 0])
    } else {
        Rgb([to8(2.0 * (1.0 - c)), 255, 0])
    }
}

/// Green at 0 px error → yellow at half `threshold_px` → red at and beyond it (the
/// confidence map of `1 − error/threshold`); non-finite errors are red.
pub fn error_color(error_px: f64, threshold_px: f64) -> Rgb<u8> {
    if !error_px.is_finite() || threshold_px.is_nan() || threshold_px <= 0.0 {
        return confidence_color(0.0);
    }
    confidence_color((1.0 - error_px / threshold_px) as f32)
}

/// Draw `matches` between `img0` and `img1` side by side (see the module doc for the layout,
/// the line subset and the colours). `inliers[i]` flags `matches[i]`; a match without a flag
/// (shorter slice) counts as an inlier. Matches with non-finite coordinates are skipped.
pub fn draw_matches(
    img0: &RgbImage,
    img1: &RgbImage,
    matches: &[PixelMatch],
    inliers: Option<&[bool]>,
    options: &VizOptions,
) -> RgbImage {
    let (w0, h0) = img0.dimensions();
    let (w1, h1) = img1.dimensions();
    let mut canvas = RgbImage::new(w0 + w1, h0.max(h1));
    for (x, y, p) in img0.enumerate_pixels() {
        canvas.put_pixel(x, y, *p);
    }
    for (x, y, p) in img1.enumerate_pixels() {
        canvas.put_pixel(w0 + x, y, *p);
    }

    let is_inlier = |i: usize| inliers.and_then(|f| f.get(i)).copied().unwrap_or(true);
    let ends = |m: &PixelMatch| ((m.p0.x, m.p0.y), (m.p1.x + w0 as f64, m.p1.y));
    // Higher is better: what picks a cell's line and orders the drawing.
    let score = |i: usize| -> f64 {
        match options.colors {
            MatchColors::Confidence => matches[i].confidence as f64,
            MatchColors::GroundTruthError { errors_px, .. } => errors_px
                .get(i)
                .copied()
                .filter(|e| e.is_finite())
                .map_or(f64::NEG_INFINITY, |e| -e),
        }
    };
    let color = |i: usize| match options.colors {
        MatchColors::Confidence => confidence_color(matches[i].confidence),
        MatchColors::GroundTruthError {
            errors_px,
            threshold_px,
        } => error_color(errors_px.get(i).copied().unwrap_or(f64::NAN), threshold_px),
    };

    let valid: Vec<usize> = (0..matches.len())
        .filter(|&i| matches[i].p0.is_finite() && matches[i].p1.is_finite())
        .collect();
    let (mut good, outliers): (Vec<usize>, Vec<usize>) =
        valid.into_iter().partition(|&i| is_inlier(i));
    good.sort_by(|&a, &b| score(a).total_cmp(&score(b)));

    for &i in &outliers {
        let (a, b) = ends(&matches[i]);
        draw_dot(&mut canvas, a, 0, OUTLIER_COLOR);
        draw_dot(&mut canvas, b, 0, OUTLIER_COLOR);
    }
    for &i in &line_subset(matches, &good, options.max_lines, (w0, h0), &score) {
        let (a, b) = ends(&matches[i]);
        draw_line(&mut canvas, a, b, color(i));
    }
    // Dots after the lines (best last, on top), so every endpoint stays visible.
    for &i in &good {
        let (a, b) = ends(&matches[i]);
        draw_dot(&mut canvas, a, 1, color(i));
        draw_dot(&mut canvas, b, 1, color(i));
    }
    canvas
}

/// At most `max_lines` of `candidates` (sorted worst → best), spread over image 0 (`size`):
/// a grid of ⌈√max_lines⌉² cells, the best candidate of each cell, then the best of those.
/// Returned worst → best, the drawing order.
fn line_subset(
    matches: &[PixelMatch],
    candidates: &[usize],
    max_lines: usize,
    size: (u32, u32),
    score: &dyn Fn(usize) -> f64,
) -> Vec<usize> {
    if max_lines == 0 {
        return Vec::new();
    }
    let side = (max_lines as f64).sqrt().ceil() as usize;
    let cell_of = |i: usize| {
        let p = &matches[i].p0;
        let cx = (p.x / size.0.max(1) as f64 * side as f64).floor();
        let cy = (p.y / size.1.max(1) as f64 * side as f64).floor();
        let clamp = |v: f64| v.clamp(0.0, (side - 1) as f64) as usize;
        clamp(cy) * side + clamp(cx)
    };
    let mut best: Vec<Option<usize>> = vec![None; side * side];
    // Candidates run worst → best, so the last one seen in a cell is its best.
    for &i in candidates {
        best[cell_of(i)] = Some(i);
    }
    let mut chosen: Vec<usize> = best.into_iter().flatten().collect();
    chosen.sort_by(|&a, &b| score(a).total_cmp(&score(b)));
    let skip = chosen.len().saturating_sub(max_lines);
    chosen.split_off(skip)
}

fn plot(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < img.width() as u64 && (y as u64) < img.height() as u64 {
        img.put_pixel(x as u32, y as u32, color);
    }
}

/// A filled disc of integer radius centred on the pixel nearest `p`.
fn draw_dot(img: &mut RgbImage, p: (f64, f64), radius: i64, color: Rgb<u8>) {
    let (cx, cy) = (p.0.round() as i64, p.1.round() as i64);
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            if dx * dx + dy * dy <= radius * radius + radius / 2 {
                plot(img, cx + dx, cy + dy, color);
            }
        }
    }
}

/// `color` blended over the pixel at ([`LINE_ALPHA`]).
fn blend(img: &mut RgbImage, x: i64, y: i64, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < img.width() as u64 && (y as u64) < img.height() as u64 {
        let p = img.get_pixel_mut(x as u32, y as u32);
        for c in 0..3 {
            let v = LINE_ALPHA * color.0[c] as f32 + (1.0 - LINE_ALPHA) * p.0[c] as f32;
            p.0[c] = v.round() as u8;
        }
    }
}

/// Bresenham line between the pixels nearest `a` and `b`, 1 px wide and blended over the
/// photo, clipped to the canvas first so far away points cost nothing.
fn draw_line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), color: Rgb<u8>) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let Some((a, b)) = clip(a, b, (-1.0, -1.0), (w, h)) else {
        return;
    };
    let (mut x0, mut y0) = (a.0.round() as i64, a.1.round() as i64);
    let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        blend(img, x0, y0, color);
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}

/// Liang–Barsky clipping of segment a→b to the box [lo, hi].
fn clip(
    a: (f64, f64),
    b: (f64, f64),
    lo: (f64, f64),
    hi: (f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - lo.0),
        (dx, hi.0 - a.0),
        (-dy, a.1 - lo.1),
        (dy, hi.1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    Some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::PixelPoint;

    fn m(x0: f64, y0: f64, x1: f64, y1: f64, confidence: f32) -> PixelMatch {
        PixelMatch {
            p0: PixelPoint::new(x0, y0),
            p1: PixelPoint::new(x1, y1),
            confidence,
        }
    }

    #[test]
    fn colormap_is_red_yellow_green() {
        assert_eq!(confidence_color(0.0), Rgb([255, 0, 0]));
        assert_eq!(confidence_color(0.25), Rgb([255, 128, 0])); // 127.5 rounds up
        assert_eq!(confidence_color(0.5), Rgb([255, 255, 0]));
        assert_eq!(confidence_color(0.75), Rgb([128, 255, 0]));
        assert_eq!(confidence_color(1.0), Rgb([0, 255, 0]));
        assert_eq!(confidence_color(7.0), Rgb([0, 255, 0]));
        assert_eq!(confidence_color(f32::NAN), Rgb([255, 0, 0]));
    }

    #[test]
    fn error_colors_run_green_to_red_over_the_threshold() {
        assert_eq!(error_color(0.0, 3.0), Rgb([0, 255, 0]));
        assert_eq!(error_color(1.5, 3.0), Rgb([255, 255, 0]));
        assert_eq!(error_color(3.0, 3.0), Rgb([255, 0, 0]));
        assert_eq!(error_color(30.0, 3.0), Rgb([255, 0, 0]));
        assert_eq!(error_color(f64::NAN, 3.0), Rgb([255, 0, 0]));
        assert_eq!(error_color(0.0, 0.0), Rgb([255, 0, 0]));
    }

    #[test]
    fn canvas_places_images_side_by_side_and_pads() {
        let a = RgbImage::from_pixel(40, 30, Rgb([10, 20, 30]));
        let b = RgbImage::from_pixel(50, 45, Rgb([200, 100, 50]));
        let c = draw_matches(&a, &b, &[], None, &VizOptions::default());
        assert_eq!(c.dimensions(), (90, 45));
        assert_eq!(c.get_pixel(39, 29).0, [10, 20, 30]);
        assert_eq!(c.get_pixel(40, 0).0, [200, 100, 50]);
        assert_eq!(c.get_pixel(89, 44).0, [200, 100, 50]);
        // Below the shorter left image: black padding.
        assert_eq!(c.get_pixel(0, 30).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(39, 44).0, [0, 0, 0]);
    }

    #[test]
    fn dots_take_the_colormap_lines_are_blended_and_outliers_are_grey_dots() {
        let a = RgbImage::new(40, 30);
        let b = RgbImage::new(50, 45);
        let matches = [
            m(5.0, 5.0, 10.0, 5.0, 1.0),    // horizontal, green
            m(5.0, 20.0, 30.0, 40.0, 0.0),  // red
            m(20.0, 10.0, 5.0, 30.0, 0.5),  // yellow
            m(30.0, 25.0, 45.0, 10.0, 0.9), // outlier
        ];
        let c = draw_matches(
            &a,
            &b,
            &matches,
            Some(&[true, true, true, false]),
            &VizOptions::default(),
        );
        let at = |x: u32, y: u32| c.get_pixel(x, y).0;
        // Endpoints: image 0 at (x, y), image 1 at (40 + x, y), a plus of radius 1.
        assert_eq!(at(5, 5), [0, 255, 0]);
        assert_eq!(at(6, 5), [0, 255, 0]);
        assert_eq!(at(50, 5), [0, 255, 0]);
        assert_eq!(at(5, 20), [255, 0, 0]);
        assert_eq!(at(70, 40), [255, 0, 0]);
        assert_eq!(at(20, 10), [255, 255, 0]);
        assert_eq!(at(45, 30), [255, 255, 0]);
        // The outlier: one grey pixel at each end, no line.
        assert_eq!(at(30, 25), OUTLIER_COLOR.0);
        assert_eq!(at(85, 10), OUTLIER_COLOR.0);
        assert_eq!(at(31, 25), [0, 0, 0]);
        assert_eq!(at(58, 17), [0, 0, 0]);
        // The horizontal line, 1 px on row 5, 75 % green over black between its dots.
        for x in 8..48 {
            assert_eq!(at(x, 5), [0, 191, 0], "x = {x}");
        }
        assert_eq!(at(27, 6), [0, 0, 0]);
        // Without flags every match is an inlier: the fourth one takes its colormap colour.
        let c = draw_matches(&a, &b, &matches, None, &VizOptions::default());
        assert_eq!(c.get_pixel(30, 25).0, confidence_color(0.9).0);
    }

    #[test]
    fn lines_are_the_best_match_per_cell_and_at_most_max_lines() {
        // 400 matches on a 20×20 grid of a 100×100 image, confidence rising with the index.
        let matches: Vec<PixelMatch> = (0..400)
            .map(|i| {
                let (x, y) = ((i % 20) as f64 * 5.0 + 2.0, (i / 20) as f64 * 5.0 + 2.0);
                m(x, y, x, y, i as f32 / 400.0)
            })
            .collect();
        let order: Vec<usize> = (0..400).collect();
        let score = |i: usize| matches[i].confidence as f64;
        // 25 lines: a 5×5 grid of 20 px cells, each holding 4×4 matches; its best is the last
        // (highest index) one, at grid position (4k + 3, 4j + 3).
        let lines = line_subset(&matches, &order, 25, (100, 100), &score);
        assert_eq!(lines.len(), 25);
        for &i in &lines {
            assert_eq!((i % 20 % 4, i / 20 % 4), (3, 3), "match {i}");
        }
        // 50 lines: an 8×8 grid (64 cells, all occupied), the 50 most confident winners.
        let lines = line_subset(&matches, &order, 50, (100, 100), &score);
        assert_eq!(lines.len(), 50);
        assert!(lines.windows(2).all(|w| score(w[0]) <= score(w[1])));
        assert!(line_subset(&matches, &order, 0, (100, 100), &score).is_empty());
        // Coloured by ground-truth error, the smallest error wins a cell instead.
        let errors: Vec<f64> = (0..400).map(|i| i as f64).collect();
        let options = VizOptions {
            max_lines: 1,
            colors: MatchColors::GroundTruthError {
                errors_px: &errors,
                threshold_px: 1000.0,
            },
        };
        let img = RgbImage::new(100, 100);
        let c = draw_matches(&img, &img, &matches, None, &options);
        // The one line is match 0's (error 0, green): from (2, 2) to (102, 2).
        assert_eq!(c.get_pixel(50, 2).0, [0, 191, 0]);
    }

    #[test]
    fn far_and_non_finite_points_do_not_hang_or_panic() {
        let a = RgbImage::new(8, 8);
        let matches = [
            m(-1e12, 3.0, 1e12, 3.0, 1.0),
            m(f64::NAN, 0.0, 1.0, 1.0, 1.0),
        ];
        let c = draw_matches(&a, &a, &matches, None, &VizOptions::default());
        // The first line crosses the whole canvas on row 3.
        assert!((0..16).all(|x| c.get_pixel(x, 3).0 == [0, 191, 0]));
        assert_eq!(c.get_pixel(1, 1).0, [0, 0, 0]);
    }
}
