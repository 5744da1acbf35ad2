//! tandem-cluster: Tandem's sans-IO active/active cluster engine.
//!
//! Not built yet: this crate will hold segment selection (the CLUSTERIP
//! `sourceip` hash), membership and failure detection, the authenticated
//! sync protocol and the mirrored IKE/ESP state that lets a node take over
//! another's segments. Until then it is an empty library so the workspace
//! has its final shape.
#![forbid(unsafe_code)]
