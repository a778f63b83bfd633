//! imd's integration tests: one binary, one module per area. Fixtures live in
//! `tests/fixtures/<area>/` and are made by the committed scripts in `scripts/` named in each
//! module's doc.

mod data;
mod eval;
mod fuzz;
mod geometry;
mod io;
mod map;
mod matching;
mod metric;
mod odom_stereo;
mod parity;
mod pipeline;
mod replay;
mod train;
mod util;
