//! `tandem`: the gateway binary.
fn main() {}
