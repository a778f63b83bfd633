//! Null spaces of small wide matrices by Householder QR of the transpose.
//!
//! For `A` (M×N, M < N, full row rank), `Aᵀ = Q·R` with `Q` orthogonal N×N; the last N − M
//! columns of `Q` are an orthonormal basis of `ker A`. QR keeps the conditioning of `A` (an
//! eigen-decomposition of `AᵀA` would square it).

/// Write an orthonormal basis of the null space of `a` (rows `a[i]`) into `out`, which must
/// hold `N − M` vectors. Returns `false` when a row is (numerically) dependent on the others.
pub fn null_space<const M: usize, const N: usize>(a: &[[f64; N]; M], out: &mut [[f64; N]]) -> bool {
    debug_assert!(M < N && out.len() == N - M);
    // Columns of Aᵀ are the rows of A; reduce them in place.
    let mut cols = *a;
    let mut reflectors = [[0.0f64; N]; M];
    let mut full_rank = true;
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for k in 0..M {
        let norm = cols[k][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= 1e-14 * scale {
            full_rank = false;
        }
        let alpha = if cols[k][k] > 0.0 { -norm } else { norm };
        let mut v = [0.0f64; N];
        v[k..].copy_from_slice(&cols[k][k..]);
        v[k] -= alpha;
        let vnorm2 = v[k..].iter().map(|x| x * x).sum::<f64>();
        if vnorm2 > 0.0 {
            let inv = 1.0 / vnorm2.sqrt();
            for x in v[k..].iter_mut() {
                *x *= inv;
            }
            for col in cols.iter_mut().skip(k + 1) {
                let d: f64 = 2.0 * (k..N).map(|i| v[i] * col[i]).sum::<f64>();
                for i in k..N {
                    col[i] -= d * v[i];
                }
            }
        }
        reflectors[k] = v;
    }
    // Q·e_j = H_0 H_1 … H_{M−1} e_j for j = M..N.
    for (j, basis) in out.iter_mut().enumerate() {
        let mut e = [0.0f64; N];
        e[M + j] = 1.0;
        for v in reflectors.iter().rev() {
            let d: f64 = 2.0 * (0..N).map(|i| v[i] * e[i]).sum::<f64>();
            for i in 0..N {
                e[i] -= d * v[i];
            }
        }
        *basis = e;
    }
    full_rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_is_orthonormal_and_annihilated() {
        let a = [
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [0.0, -1.0, 0.5, 2.0, 1.0],
            [3.0, 0.1, 0.0, -2.0, 7.0],
        ];
        let mut out = [[0.0; 5]; 2];
        assert!(null_space(&a, &mut out));
        for (i, u) in out.iter().enumerate() {
            for row in &a {
                let d: f64 = row.iter().zip(u).map(|(x, y)| x * y).sum();
                assert!(d.abs() < 1e-13, "{d}");
            }
            for (j, w) in out.iter().enumerate() {
                let d: f64 = u.iter().zip(w).map(|(x, y)| x * y).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-13);
            }
        }
        let dependent = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]];
        let mut out = [[0.0; 3]; 1];
        assert!(!null_space(&dependent, &mut out));
    }
}
