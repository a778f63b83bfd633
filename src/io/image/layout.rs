//! Pixel layouts shared by the converters: validated row access to a payload and the Bayer
//! colour-filter layout (below `raw`, `bayer` and `yuv`, so none of them imports another's).

/// Colour-filter layout of a Bayer mosaic, named by its top-left 2×2 block read row-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BayerPattern {
    /// R G / G B.
    Rggb,
    /// B G / G R.
    Bggr,
    /// G B / R G.
    Gbrg,
    /// G R / B G.
    Grbg,
}

impl BayerPattern {
    /// Column and row parity `(x & 1, y & 1)` of the red sites; blue sites are at the opposite
    /// parity in both, green sites everywhere else.
    pub fn red_site(self) -> (usize, usize) {
        match self {
            BayerPattern::Rggb => (0, 0),
            BayerPattern::Bggr => (1, 1),
            BayerPattern::Gbrg => (0, 1),
            BayerPattern::Grbg => (1, 0),
        }
    }
}

/// Validated row access: `height` rows of `width` pixels of `bpp` bytes, `step` bytes apart.
/// Built only after [`RawImage::validate`], so every row slice is in bounds.
pub(crate) struct Rows<'a> {
    pub data: &'a [u8],
    pub step: usize,
    pub width: usize,
    pub height: usize,
    pub bpp: usize,
}

impl<'a> Rows<'a> {
    /// The pixel bytes of each row, padding cut off.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let n = self.width * self.bpp;
        self.data
            .chunks(self.step.max(1))
            .take(self.height)
            .map(move |r| r.get(..n).unwrap_or(&[]))
    }

    /// Rows copied as they are (padding removed).
    pub fn copy(&self) -> Vec<u8> {
        let n = self.width * self.bpp;
        if self.step == n {
            return self.data.get(..n * self.height).unwrap_or(&[]).to_vec();
        }
        let mut out = Vec::with_capacity(n * self.height);
        for row in self.iter() {
            out.extend_from_slice(row);
        }
        out
    }

    /// Convert each `IN`-byte source pixel to an `OUT`-byte destination pixel.
    pub fn repack<const IN: usize, const OUT: usize>(
        &self,
        f: impl Fn(&[u8; IN], &mut [u8; OUT]),
    ) -> Vec<u8> {
        let row_out = self.width * OUT;
        let mut out = vec![0u8; row_out * self.height];
        for (src, dst) in self.iter().zip(out.chunks_exact_mut(row_out)) {
            let (src, _) = src.as_chunks::<IN>();
            let (dst, _) = dst.as_chunks_mut::<OUT>();
            for (s, d) in src.iter().zip(dst.iter_mut()) {
                f(s, d);
            }
        }
        out
    }
}
