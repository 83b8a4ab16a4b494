//! Shared by the integration tests.
#![allow(dead_code)]

pub mod demo;
// Each test binary includes this module and uses part of it.
#[allow(unused_imports)]
pub use confer_testkit::proxy;

/// The official CometD client's scripts for these tests: `tests/node`.
pub mod node {
    #[allow(unused_imports)]
    pub use confer_testkit::node::{Script, event, messages};

    pub fn dir() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("node")
    }
}
