//! The `confer` server: composes the dialects (GWS, Evo, gRPC) around the application layer
//! (`confer-app`). See ARCHITECTURE.md for the map.

pub mod connections;
pub mod openapi;
pub mod server;
