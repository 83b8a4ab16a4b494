//! `cometd-bench`: CometD notification delivery of `confer serve`, and Confer's Bayeux engine
//! against its peers (cometd-nodejs-server, Faye). The library holds the load client and the
//! measurements, so its tests prove the counting against an in-process server; the binary
//! (`src/main.rs`) runs the sections and writes the report.

pub mod bench_server;
pub mod broadcast;
pub mod client;
pub mod delivery;
pub mod fleet;
pub mod hist;
pub mod procs;
pub mod sections;
