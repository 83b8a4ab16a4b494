//! The core's views (`confer_core::view`) spelled in the dialects' wire types
//! (`confer_model`): what GWS REST replies, CometD notifications and the gRPC API all show.
//! One renderer per dialect, shared by every transport, so a call looks the same whichever way a
//! client asks. Pure functions: no I/O, no clock (time comes in as an argument).

pub mod evo;
pub mod gws;
