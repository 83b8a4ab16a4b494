//! Shared by the integration tests.
#![allow(dead_code)]

pub mod demo;
pub mod node;
pub mod proxy;
