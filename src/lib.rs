//! The library half of the `tandem` package: the whole-cluster simulation
//! that `tandem demo` and the tests run.

pub mod sim;
