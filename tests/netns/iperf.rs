//! iperf3 on the standard layouts' server.

use super::json::Json;
use super::{Netns, Process, addr, wait_for};
use std::time::Duration;

/// A one-shot iperf3 server (`-s -1`) on the server address, listening
/// when this returns.
pub fn iperf_server(server: &Netns) -> Process {
    let p = server.spawn(&["iperf3", "-s", "-1", "-B", addr::SERVER]).expect("start iperf3 server");
    wait_for("iperf3 server listening on 5201", Duration::from_secs(20), || {
        server.exec(&["ss", "-Hltn", "sport = :5201"]).map(|o| !o.trim().is_empty()).unwrap_or(false)
    })
    .expect("iperf3 server");
    p
}

/// `iperf3 -J` output, which must report no error.
pub fn parse_iperf(json: &str) -> Json {
    let v = Json::parse(json).unwrap_or_else(|e| panic!("iperf3 output is not JSON ({e}):\n{json}"));
    if let Some(e) = v.get("error").and_then(Json::as_str) {
        panic!("iperf3: {e}");
    }
    v
}
