//! Match visualization: the two images side by side with a line per correspondence.
//!
//! Layout: image 0 at the left (x 0..w0), image 1 to its right (x w0..w0+w1), both top-aligned
//! on a black canvas of height max(h0, h1). Pixel coordinates follow
//! [`crate::geometry::PixelPoint`] (origin at the centre of the top-left pixel), so a point
//! is drawn on pixel `(round(x), round(y))`.
//!
//! Colours: [`confidence_color`] (red → yellow → green as confidence goes 0 → 0.5 → 1). When
//! inlier flags are given, outliers are drawn first, 1 px wide in grey with small grey
//! endpoint dots; inliers (or every match, without flags) are drawn over them, 2 px wide,
//! lowest confidence first so the most confident stay on top, with a filled dot of radius 2 in
//! the line colour at both endpoints.

use image::{Rgb, RgbImage};

use crate::geometry::PixelMatch;

/// Colour of outliers.
pub const OUTLIER_COLOR: Rgb<u8> = Rgb([128, 128, 128]);

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

/// Draw `matches` between `img0` and `img1` side by side (see the module doc for the layout
/// and colours). `inliers[i]` flags `matches[i]`; a match without a flag (shorter slice)
/// counts as an inlier. Matches with non-finite coordinates are skipped.
pub fn draw_matches(
    img0: &RgbImage,
    img1: &RgbImage,
    matches: &[PixelMatch],
    inliers: Option<&[bool]>,
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
    let ends = |m: &PixelMatch| {
        let a = (m.p0.x, m.p0.y);
        let b = (m.p1.x + w0 as f64, m.p1.y);
        (a, b)
    };
    let valid = |m: &PixelMatch| m.p0.is_finite() && m.p1.is_finite();

    let mut outliers: Vec<&PixelMatch> = Vec::new();
    let mut good: Vec<&PixelMatch> = Vec::new();
    for (i, m) in matches.iter().enumerate().filter(|(_, m)| valid(m)) {
        if is_inlier(i) {
            good.push(m);
        } else {
            outliers.push(m);
        }
    }
    good.sort_by(|a, b| a.confidence.total_cmp(&b.confidence));

    for m in &outliers {
        let (a, b) = ends(m);
        draw_line(&mut canvas, a, b, OUTLIER_COLOR, 1);
        for p in [a, b] {
            draw_dot(&mut canvas, p, 1, OUTLIER_COLOR);
        }
    }
    for m in &good {
        let (a, b) = ends(m);
        draw_line(&mut canvas, a, b, confidence_color(m.confidence), 2);
    }
    // Dots after all lines, so endpoints stay visible where lines cross them.
    for m in &good {
        let (a, b) = ends(m);
        let color = confidence_color(m.confidence);
        draw_dot(&mut canvas, a, 2, color);
        draw_dot(&mut canvas, b, 2, color);
    }
    canvas
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

/// Bresenham line between the pixels nearest `a` and `b`, clipped to the canvas first so far
/// away points cost nothing; `width` 2 adds the pixel right of and below each step.
fn draw_line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), color: Rgb<u8>, width: u32) {
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
        plot(img, x0, y0, color);
        if width >= 2 {
            plot(img, x0 + 1, y0, color);
            plot(img, x0, y0 + 1, color);
        }
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
    fn canvas_places_images_side_by_side_and_pads() {
        let a = RgbImage::from_pixel(40, 30, Rgb([10, 20, 30]));
        let b = RgbImage::from_pixel(50, 45, Rgb([200, 100, 50]));
        let c = draw_matches(&a, &b, &[], None);
        assert_eq!(c.dimensions(), (90, 45));
        assert_eq!(c.get_pixel(39, 29).0, [10, 20, 30]);
        assert_eq!(c.get_pixel(40, 0).0, [200, 100, 50]);
        assert_eq!(c.get_pixel(89, 44).0, [200, 100, 50]);
        // Below the shorter left image: black padding.
        assert_eq!(c.get_pixel(0, 30).0, [0, 0, 0]);
        assert_eq!(c.get_pixel(39, 44).0, [0, 0, 0]);
    }

    #[test]
    fn endpoints_and_lines_take_the_colormap_and_outliers_are_grey() {
        let a = RgbImage::new(40, 30);
        let b = RgbImage::new(50, 45);
        let matches = [
            m(5.0, 5.0, 10.0, 5.0, 1.0),    // horizontal, green
            m(5.0, 20.0, 30.0, 40.0, 0.0),  // red
            m(20.0, 10.0, 5.0, 30.0, 0.5),  // yellow
            m(30.0, 25.0, 45.0, 10.0, 0.9), // outlier
        ];
        let c = draw_matches(&a, &b, &matches, Some(&[true, true, true, false]));
        let at = |x: u32, y: u32| c.get_pixel(x, y).0;
        // Endpoints: image 0 at (x, y), image 1 at (40 + x, y).
        assert_eq!(at(5, 5), [0, 255, 0]);
        assert_eq!(at(50, 5), [0, 255, 0]);
        assert_eq!(at(5, 20), [255, 0, 0]);
        assert_eq!(at(70, 40), [255, 0, 0]);
        assert_eq!(at(20, 10), [255, 255, 0]);
        assert_eq!(at(45, 30), [255, 255, 0]);
        assert_eq!(at(30, 25), OUTLIER_COLOR.0);
        assert_eq!(at(85, 10), OUTLIER_COLOR.0);
        // The horizontal green line covers row 5 (and row 6: 2 px wide) between its dots.
        for x in 8..48 {
            assert_eq!(at(x, 5), [0, 255, 0], "x = {x}");
            assert_eq!(at(x, 6), [0, 255, 0], "x = {x}");
        }
        assert_eq!(at(27, 4), [0, 0, 0]);
        // Without flags every match is an inlier: the fourth one takes its colormap colour.
        let c = draw_matches(&a, &b, &matches, None);
        assert_eq!(c.get_pixel(30, 25).0, confidence_color(0.9).0);
    }

    #[test]
    fn far_and_non_finite_points_do_not_hang_or_panic() {
        let a = RgbImage::new(8, 8);
        let matches = [
            m(-1e12, 3.0, 1e12, 3.0, 1.0),
            m(f64::NAN, 0.0, 1.0, 1.0, 1.0),
        ];
        let c = draw_matches(&a, &a, &matches, None);
        // The first line crosses the whole canvas on row 3.
        assert!((0..16).all(|x| c.get_pixel(x, 3).0 == [0, 255, 0]));
        assert_eq!(c.get_pixel(1, 1).0, [0, 0, 0]);
    }
}
