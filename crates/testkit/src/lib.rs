//! Test support shared by several crates' tests (never a dependency of product code): Node
//! scripts that drive the unmodified official CometD client ([`node`]), and a TCP proxy that
//! drops or cuts traffic the way a network does ([`proxy`]).

#![allow(clippy::missing_panics_doc)]

pub mod node;
pub mod proxy;
