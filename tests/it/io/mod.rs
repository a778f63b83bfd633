//! io: rosbag2 MCAP reading/writing against an independent Python writer/reader, rosbag2 bag
//! directories (`rosbag2`: sqlite3, split, compressed, damaged), the message table against
//! rosbags' type store (`schema`), and image files. Fixtures: `tests/fixtures/bags/` made by
//! `scripts/fixtures/make_bag_fixtures.py`; the writer oracle is `scripts/oracles/check_mcap.py`
//! (PyPI `mcap` + `mcap-ros2-support` in `.venv`).

mod bag;
pub mod damage;
pub mod hostile;
pub mod rosbag2;
mod schema;
mod writer;
