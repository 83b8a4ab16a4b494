//! The ServiceStack envelope and request types around `SessionInfo` (errors, the list page, the
//! authentication DTOs, the bodies of `NewSession` and `InviteChatMember`), as declared in
//! `spec/evo.toml` and generated into `confer_model::evo`.

pub use confer_model::evo::{
    Authenticate, AuthenticateResponse, ErrorResponse, InviteChatMember, NewSession,
    OriginalSessionMember as NewSessionMember, ResponseError, ResponseStatus, SessionList,
};
