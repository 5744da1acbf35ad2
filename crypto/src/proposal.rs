//! Proposals (helper fills in).
