//! What the benchmark binaries of `cargo xtask bench` share (issue 7):
//!
//! * [`machine`]: the machine a run measured (cores, memory, OS);
//! * [`report`]: the JSON every binary writes (`Report`, `Row`, `Target`);
//! * [`server`]: a `confer serve` process on ephemeral ports (`ConferServer`);
//! * [`preload`]: filling a store with agents and removable calls before a server starts;
//! * [`load`]: the load generator (fixed keep-alive connections, closed or open loop, bounded in
//!   count and time, HDR latency histograms), HTTP/1.1 and gRPC;
//! * [`workload`]: the GWS and gRPC removal requests built from a preload;
//! * [`baseline`]: the bare hyper servers that answer a canned reply.
//!
//! `confer-bench` (this crate's binary) runs the removal benchmarks; `cometd-bench` the CometD
//! ones. How to run them: `docs/benchmarks.md`.

pub mod baseline;
pub mod load;
pub mod machine;
pub mod postgres;
pub mod preload;
pub mod report;
pub mod server;
pub mod workload;
