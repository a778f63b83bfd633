//! Benchmark runners with the paper's protocols.
