//! The round trips every model must survive: JSON → model → JSON, and
//! JSON → model → protobuf message → bytes → protobuf message → model → JSON.

use prost::Message;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::proto_support::ProtoError;

/// A value written back both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundTrip {
    /// JSON → model → JSON.
    pub via_json: Value,
    /// JSON → model → protobuf bytes → model → JSON.
    pub via_proto: Value,
    /// Whether the model read back from protobuf equals the model read from JSON.
    pub model_unchanged_by_proto: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RoundTripError {
    #[error("no spec struct is named `{0}`")]
    UnknownType(String),
    #[error("the JSON does not parse as the model")]
    Parse(#[source] serde_json::Error),
    #[error("the model does not serialize")]
    Serialize(#[source] serde_json::Error),
    #[error("the protobuf message does not decode")]
    Decode(#[source] prost::DecodeError),
    #[error("the protobuf message does not convert back to the model")]
    FromProto(#[source] ProtoError),
}

/// [`RoundTrip`] for one model type `M` and its protobuf message `P`.
pub fn round_trip_as<M, P>(json: &Value) -> Result<RoundTrip, RoundTripError>
where
    M: DeserializeOwned + Serialize + Clone + PartialEq + Into<P> + TryFrom<P, Error = ProtoError>,
    P: Message + Default,
{
    let model: M = serde_json::from_value(json.clone()).map_err(RoundTripError::Parse)?;
    let via_json = serde_json::to_value(&model).map_err(RoundTripError::Serialize)?;
    let bytes = model.clone().into().encode_to_vec();
    let decoded = P::decode(bytes.as_slice()).map_err(RoundTripError::Decode)?;
    let back = M::try_from(decoded).map_err(RoundTripError::FromProto)?;
    let via_proto = serde_json::to_value(&back).map_err(RoundTripError::Serialize)?;
    Ok(RoundTrip {
        via_json,
        via_proto,
        model_unchanged_by_proto: back == model,
    })
}
