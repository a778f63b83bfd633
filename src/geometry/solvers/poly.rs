//! Real roots of small univariate polynomials by Sturm sequences: isolate every real root by
//! bisection on sign-change counts, then polish it with safeguarded Newton steps.
//!
//! Coefficients are in ascending order: `c[0] + c[1]·x + … + c[n]·xⁿ`, degree ≤ [`MAX_DEGREE`].

/// Largest degree handled (the 5-point solver needs 10).
pub const MAX_DEGREE: usize = 10;

/// Horner evaluation of `c[0] + c[1]x + …`.
#[inline]
pub fn eval(c: &[f64], x: f64) -> f64 {
    let mut acc = 0.0;
    for &a in c.iter().rev() {
        acc = acc * x + a;
    }
    acc
}

/// Value and derivative by Horner.
#[inline]
fn eval_with_derivative(c: &[f64], x: f64) -> (f64, f64) {
    let mut p = 0.0;
    let mut dp = 0.0;
    for &a in c.iter().rev() {
        dp = dp * x + p;
        p = p * x + a;
    }
    (p, dp)
}

/// The Sturm sequence of a polynomial, stored densely.
struct Sturm {
    polys: [[f64; MAX_DEGREE + 1]; MAX_DEGREE + 1],
    degrees: [usize; MAX_DEGREE + 1],
    len: usize,
}

impl Sturm {
    /// Build the sequence p, p', −rem(p, p'), … for a monic `p` of degree `n`.
    fn new(p: &[f64]) -> Sturm {
        let n = p.len() - 1;
        let mut s = Sturm {
            polys: [[0.0; MAX_DEGREE + 1]; MAX_DEGREE + 1],
            degrees: [0; MAX_DEGREE + 1],
            len: 2,
        };
        s.polys[0][..=n].copy_from_slice(p);
        s.degrees[0] = n;
        for (k, a) in p.iter().enumerate().skip(1) {
            s.polys[1][k - 1] = k as f64 * a;
        }
        s.degrees[1] = n - 1;
        while s.degrees[s.len - 1] > 0 {
            let (a, da) = (s.polys[s.len - 2], s.degrees[s.len - 2]);
            let (b, db) = (s.polys[s.len - 1], s.degrees[s.len - 1]);
            let amax = a[..=da].iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let mut r = a;
            // Long division of a by b; the remainder stays in r[..db].
            for k in (db..=da).rev() {
                let q = r[k] / b[db];
                for j in 0..=db {
                    r[k - db + j] -= q * b[j];
                }
                r[k] = 0.0;
            }
            // Remainder degree: drop coefficients that are rounding noise.
            let rmax = r[..db].iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if rmax <= 1e-14 * amax {
                // b divides a: p has a multiple root; the sequence ends with gcd = b.
                break;
            }
            let mut dr = db - 1;
            while dr > 0 && r[dr].abs() <= 1e-14 * rmax {
                dr -= 1;
            }
            let slot = &mut s.polys[s.len];
            for j in 0..=dr {
                slot[j] = -r[j];
            }
            for v in slot.iter_mut().skip(dr + 1) {
                *v = 0.0;
            }
            s.degrees[s.len] = dr;
            s.len += 1;
        }
        s
    }

    /// Number of sign changes of the sequence at `x`.
    fn sign_changes(&self, x: f64) -> usize {
        let mut changes = 0;
        let mut last = 0.0f64;
        for k in 0..self.len {
            let v = eval(&self.polys[k][..=self.degrees[k]], x);
            if v != 0.0 {
                if last != 0.0 && (v > 0.0) != (last > 0.0) {
                    changes += 1;
                }
                last = v;
            }
        }
        changes
    }
}

/// Append the distinct real roots of `c` (ascending coefficients) to `out`, in increasing order.
/// Leading zero coefficients are ignored. Multiple roots are reported once.
pub fn real_roots(c: &[f64], out: &mut Vec<f64>) {
    let mut n = c.len().saturating_sub(1).min(MAX_DEGREE);
    while n > 0 && c[n] == 0.0 {
        n -= 1;
    }
    if n == 0 {
        return;
    }
    let mut p = [0.0; MAX_DEGREE + 1];
    for k in 0..=n {
        p[k] = c[k] / c[n];
    }
    let p = &p[..=n];
    if !p.iter().all(|v| v.is_finite()) {
        return;
    }
    if n == 1 {
        out.push(-p[0]);
        return;
    }
    // Fujiwara's bound: every root has |x| < 2·max_k |a_{n−k}|^{1/k} (monic; last term halved).
    let mut bound = 0.0f64;
    for k in 1..=n {
        let mut a = p[n - k].abs();
        if k == n {
            a *= 0.5;
        }
        bound = bound.max(a.powf(1.0 / k as f64));
    }
    let bound = 2.0 * bound + 1e-12;
    let sturm = Sturm::new(p);
    let lo = -bound;
    let hi = bound;
    let (va, vb) = (sturm.sign_changes(lo), sturm.sign_changes(hi));
    if va <= vb {
        return;
    }
    let first = out.len();
    // Depth-first isolation; each stack entry is an interval (a, b] holding va − vb roots.
    let mut stack: [(f64, f64, usize, usize); 64] = [(0.0, 0.0, 0, 0); 64];
    let mut top = 1;
    stack[0] = (lo, hi, va, vb);
    while top > 0 {
        top -= 1;
        let (a, b, va, vb) = stack[top];
        let count = va - vb;
        if count == 0 {
            continue;
        }
        let width = b - a;
        if count == 1 || width <= 1e-14 * (a.abs().max(b.abs()).max(1.0)) {
            // Isolated (or an unresolvable cluster, reported once).
            out.push(polish(p, &sturm, a, b, va));
            continue;
        }
        let m = 0.5 * (a + b);
        let vm = sturm.sign_changes(m);
        if top + 2 > stack.len() {
            // Cannot happen for degree ≤ 10 with halving; keep the midpoint as a fallback.
            out.push(m);
            continue;
        }
        // Push the upper half first so the lower half is processed first (ascending output).
        stack[top] = (m, b, vm, vb);
        stack[top + 1] = (a, m, va, vm);
        top += 2;
    }
    out[first..].sort_by(f64::total_cmp);
}

/// Polish the single root in (a, b]: Newton steps kept inside a shrinking bracket.
fn polish(p: &[f64], sturm: &Sturm, mut a: f64, mut b: f64, va: usize) -> f64 {
    let mut fa = eval(p, a);
    let fb = eval(p, b);
    if fb == 0.0 {
        return b;
    }
    if fa == 0.0 || (fa > 0.0) == (fb > 0.0) {
        // No sign change (an even-multiplicity root or rounding): bisect on Sturm counts.
        for _ in 0..200 {
            let m = 0.5 * (a + b);
            if m <= a || m >= b {
                break;
            }
            if sturm.sign_changes(m) < va {
                b = m;
            } else {
                a = m;
            }
        }
        return 0.5 * (a + b);
    }
    let mut x = 0.5 * (a + b);
    for _ in 0..100 {
        let (f, df) = eval_with_derivative(p, x);
        if f == 0.0 {
            return x;
        }
        // Shrink the bracket around the sign change.
        if (f > 0.0) == (fa > 0.0) {
            a = x;
            fa = f;
        } else {
            b = x;
        }
        let newton = x - f / df;
        let next = if df != 0.0 && newton > a && newton < b {
            newton
        } else {
            0.5 * (a + b)
        };
        if (next - x).abs() <= 4.0 * f64::EPSILON * x.abs().max(1e-300)
            || b - a <= 4.0 * f64::EPSILON * x.abs()
        {
            return next;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_roots(roots: &[f64]) -> Vec<f64> {
        let mut c = vec![1.0];
        for &r in roots {
            let mut next = vec![0.0; c.len() + 1];
            for (k, &a) in c.iter().enumerate() {
                next[k + 1] += a;
                next[k] -= r * a;
            }
            c = next;
        }
        c
    }

    #[test]
    fn finds_all_roots_of_products() {
        let cases: Vec<Vec<f64>> = vec![
            vec![1.0, -2.0, 3.5],
            vec![-7.0, -0.1, 0.0, 0.2, 1e-3, 12.0, -30.0, 4.0, 5.0, 6.0],
            vec![0.5, 0.5001],
            vec![100.0, -100.0, 1.0, 2.0],
        ];
        for roots in cases {
            let c = from_roots(&roots);
            let mut got = Vec::new();
            real_roots(&c, &mut got);
            let mut want = roots.clone();
            want.sort_by(f64::total_cmp);
            assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                // Well-separated roots of a degree ≤ 10 product are recovered to ~1e-12 relative.
                assert!(
                    (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                    "{got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn skips_complex_roots() {
        // (x² + 1)(x − 2)(x² + 0.01)
        let mut c = from_roots(&[2.0]);
        for q in [1.0, 0.01] {
            let mut next = vec![0.0; c.len() + 2];
            for (k, &a) in c.iter().enumerate() {
                next[k + 2] += a;
                next[k] += q * a;
            }
            c = next;
        }
        let mut got = Vec::new();
        real_roots(&c, &mut got);
        assert_eq!(got.len(), 1);
        assert!((got[0] - 2.0).abs() < 1e-12);
        got.clear();
        real_roots(&[1.0, 0.0, 1.0], &mut got);
        assert!(got.is_empty());
        real_roots(&[3.0], &mut got);
        assert!(got.is_empty());
    }
}
