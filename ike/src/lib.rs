//! tandem-ike: Tandem's sans-IO IKEv2 engine (RFC 7296).
//!
//! Not built yet: this crate will hold the IKEv2 wire codec and the IKE_SA /
//! CHILD_SA state machines, taking datagrams, `now` and an RNG and returning
//! datagrams, timers and events, on top of `tandem-crypto`'s transforms.
//! Until then it is an empty library so the workspace has its final shape.
#![forbid(unsafe_code)]
