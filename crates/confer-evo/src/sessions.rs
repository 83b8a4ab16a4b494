//! The `/sessions` services: list, get, `NewSession`, `InviteChatMember`, `DeleteChatMember`
//! (the seed) and ending a session.
//!
//! Every service needs ServiceStack's `[RequiredRole("User")]` (checked first, as the attribute
//! is), then the core decides. A session of an account the user does not belong to answers 403
//! "Invalid Role", as the issue asks ("403 without the role or outside the account"); an id that
//! names no session answers 404. (The core itself treats other accounts' sessions as absent; the
//! edge tells the two apart with one extra read, only on that error path.)

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, RawQuery, State, rejection::PathRejection},
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};
use confer_app::{App, engine::Executed};
use confer_core::{
    AccountId, Actor, Command, Conference, ConferenceId, DomainError, MemberId,
    command::{NewSession as CoreNewSession, NewSessionMember as CoreNewSessionMember},
    conference::{ConferenceNoun, session::SessionDetails},
};
use confer_model::evo::DeleteChatMember;

use crate::{
    EvoState,
    auth::{authenticate, require_user_role},
    error::EvoError,
    format::{BodyFormat, Format, Negotiated, query_value, strip_format_suffix},
    render::{channel_of, direction_of, member_call_state_of, member_role_of, session_info},
    reply::{idempotency_key, read_body, reply},
    wire::{InviteChatMember, NewSession, SessionList},
};

/// Sessions per page when the client does not say.
pub const DEFAULT_COUNT_PER_PAGE: u64 = 100;
/// The most sessions on one page (`all=true` aside).
pub const MAX_COUNT_PER_PAGE: u64 = 1000;
/// The longest session or member id a client may choose.
const MAX_ID_LEN: usize = 128;

/// `GET /sessions`: the sessions of the user's accounts, newest first, one page at a time.
///
/// Query: `page` (from 0, default 0), `countPerPage` (1 to 1000, default 100), `all=true` (every
/// session on one page). Reply: `{items, totalCount, totalPages, hasMorePages}`.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "Evo sessions",
    operation_id = "evoListSessions",
    summary = "The sessions of the user's accounts, newest first, one page at a time.",
    params(("page" = Option<u64>, Query, description = "The page, from 0 (default 0)."), ("countPerPage" = Option<u64>, Query, description = "Sessions per page, 1 to 1000 (default 100)."), ("all" = Option<bool>, Query, description = "`true`: every session on one page."), ("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    responses(
        (status = 200, description = "One page of sessions.", content((confer_model::evo::SessionList = "application/json"), (confer_model::evo::SessionList = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn list(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    respond(
        format,
        list_sessions(&state.app, format, query.as_deref(), &headers).await,
    )
}

async fn list_sessions(
    app: &App,
    format: Format,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, EvoError> {
    let actor = authenticate(app, headers).await?;
    require_user_role(&actor, "ListSessions")?;
    let paging = Paging::of_query(query)?;
    let mut sessions: Vec<Conference> = app
        .engine
        .listed_for(&actor)
        .await?
        .into_iter()
        .filter(|conference| conference.as_session().is_some())
        .collect();
    sessions.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
    let total = u64::try_from(sessions.len()).unwrap_or(u64::MAX);
    let per_page = if paging.all {
        total.max(1)
    } else {
        paging.count_per_page
    };
    let total_pages = total.div_ceil(per_page);
    let skip = paging.page.saturating_mul(per_page);
    let items = sessions
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .filter_map(session_info)
        .collect();
    reply(
        format,
        StatusCode::OK,
        &SessionList {
            items,
            // .NET's `int`/`long` on the wire; a count never nears i64::MAX.
            total_count: i64::try_from(total).unwrap_or(i64::MAX),
            total_pages: i64::try_from(total_pages).unwrap_or(i64::MAX),
            has_more_pages: paging.page.saturating_add(1) < total_pages,
        },
    )
}

/// The paging query parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paging {
    page: u64,
    count_per_page: u64,
    all: bool,
}

impl Paging {
    fn of_query(query: Option<&str>) -> Result<Self, EvoError> {
        let number = |field: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match query_value(query, field) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|value| range.contains(value))
                    .ok_or_else(|| EvoError::BadParameter {
                        field,
                        message: format!(
                            "{field} must be a whole number from {} to {}, not '{text}'",
                            range.start(),
                            range.end()
                        ),
                    }),
            }
        };
        let all = match query_value(query, "all") {
            None => false,
            Some(text) if text.trim().eq_ignore_ascii_case("true") => true,
            Some(text) if text.trim().eq_ignore_ascii_case("false") => false,
            Some(text) => {
                return Err(EvoError::BadParameter {
                    field: "all",
                    message: format!("all must be true or false, not '{text}'"),
                });
            }
        };
        Ok(Self {
            page: number("page", 0, 0..=u64::from(u32::MAX))?,
            count_per_page: number(
                "countPerPage",
                DEFAULT_COUNT_PER_PAGE,
                1..=MAX_COUNT_PER_PAGE,
            )?,
            all,
        })
    }
}

/// `GET /sessions/{id}`.
#[utoipa::path(
    get,
    path = "/sessions/{id}",
    tag = "Evo sessions",
    operation_id = "evoGetSession",
    summary = "One session.",
    params(("id" = String, Path, description = "The session id."), ("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    responses(
        (status = 200, description = "The session.", content((confer_model::evo::SessionInfo = "application/json"), (confer_model::evo::SessionInfo = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn get(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let actor = authenticate(&state.app, &headers).await?;
        require_user_role(&actor, "GetSession")?;
        let id = strip_format_suffix(uri.path(), path_value(path)?);
        let conference = visible_session(&state.app, &actor, &id).await?;
        reply_session(format, &conference)
    }
    .await;
    respond(format, result)
}

/// `POST /sessions` (Evo's `NewSession`).
#[utoipa::path(
    post,
    path = "/sessions",
    tag = "Evo sessions",
    operation_id = "evoNewSession",
    summary = "Start a session (`NewSession`).",
    params(("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    request_body(content((confer_model::evo::NewSession = "application/json"), (confer_model::evo::NewSession = "text/jsv"), (confer_model::evo::NewSession = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The new session.", content((confer_model::evo::SessionInfo = "application/json"), (confer_model::evo::SessionInfo = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn create(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let actor = authenticate(&state.app, &headers).await?;
        require_user_role(&actor, "NewSession")?;
        let request: NewSession = read_body(BodyFormat::of_headers(&headers)?, body).await?;
        let key = idempotency_key(&headers, "POST", "/sessions", &request)?;
        let command = new_session_command(&actor, request)?;
        let executed = execute(&state.app, &actor, command, key).await?;
        reply_session(format, &executed.conference)
    }
    .await;
    respond(format, result)
}

/// The core's `CreateSession` for a `NewSession` request; ids the client left out are chosen
/// here (random, so concurrent requests never collide).
fn new_session_command(actor: &Actor, request: NewSession) -> Result<Command, EvoError> {
    let account_id = match given(request.account_id) {
        Some(account) => AccountId::new(account),
        None => {
            let mut accounts = actor.accounts.iter();
            match (accounts.next(), accounts.next()) {
                (Some(only), None) => only.clone(),
                _ => {
                    return Err(EvoError::MissingField {
                        field: "AccountId",
                        message: "accountId is required for a user of several accounts (or none)"
                            .to_owned(),
                    });
                }
            }
        }
    };
    let id = match given(request.id) {
        Some(id) => checked_id("Id", id)?,
        None => random_id("")?,
    };
    let members = request
        .members
        .into_iter()
        .map(|member| {
            Ok(CoreNewSessionMember {
                member_id: MemberId::new(match given(member.member_id) {
                    Some(id) => checked_id("MemberId", id)?,
                    None => random_id("m")?,
                }),
                identity: member.identity.unwrap_or_default(),
                display_name: given(member.display_name),
                role: member_role_of(member.role),
                call_state: member_call_state_of(
                    member
                        .call_state
                        .unwrap_or(confer_model::evo::SessionMemberCallState::Connected),
                ),
            })
        })
        .collect::<Result<Vec<_>, EvoError>>()?;
    Ok(Command::CreateSession(CoreNewSession {
        id: ConferenceId::new(id),
        account_name: given(request.account_name).unwrap_or_else(|| account_id.to_string()),
        account_id,
        channel: channel_of(request.channel),
        direction: direction_of(request.direction),
        members,
        details: Box::new(SessionDetails {
            customer_id: given(request.customer_id),
            customer_name: given(request.customer_name),
            endpoint_id: given(request.endpoint_id),
            endpoint_name: given(request.endpoint_name),
            destination: given(request.destination),
            to_address: given(request.to_address),
            from_address: given(request.from_address),
            from_name: given(request.from_name),
            from_phone_number: given(request.from_phone_number),
            display_name: given(request.display_name),
            callback_number: given(request.callback_number),
            call_sid: given(request.call_sid),
            conference_sid: given(request.conference_sid),
            outcome: given(request.outcome),
        }),
    }))
}

/// `POST /sessions/{id}/members` (Evo's `InviteChatMember`).
#[utoipa::path(
    post,
    path = "/sessions/{id}/members",
    tag = "Evo sessions",
    operation_id = "evoInviteChatMember",
    summary = "Add a member (`InviteChatMember`).",
    params(("id" = String, Path, description = "The session id."), ("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    request_body(content((confer_model::evo::InviteChatMember = "application/json"), (confer_model::evo::InviteChatMember = "text/jsv"), (confer_model::evo::InviteChatMember = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The session with its new member.", content((confer_model::evo::SessionInfo = "application/json"), (confer_model::evo::SessionInfo = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn invite(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let actor = authenticate(&state.app, &headers).await?;
        require_user_role(&actor, "InviteChatMember")?;
        // The route ends in the static `members` segment: a format suffix is never on the id.
        let id = path_value(path)?;
        let request: InviteChatMember = read_body(BodyFormat::of_headers(&headers)?, body).await?;
        let key = idempotency_key(
            &headers,
            "POST",
            &format!("/sessions/{id}/members"),
            &request,
        )?;
        let member_id = match given(request.member_id) {
            Some(member) => checked_id("MemberId", member)?,
            None => random_id("m")?,
        };
        let command = Command::InviteSessionMember {
            session: ConferenceId::new(id),
            member_id: MemberId::new(member_id),
            member_to_add: request.member_to_add.unwrap_or_default(),
            display_name: given(request.display_name),
            role: member_role_of(request.role),
        };
        let executed = execute(&state.app, &actor, command, key).await?;
        reply_session(format, &executed.conference)
    }
    .await;
    respond(format, result)
}

/// `DELETE /sessions/{sessionId}/members/{memberId}` (Evo's `DeleteChatMember`, the seed).
///
/// The member is named by `MemberToRemove` (query, any case) or else by `{memberId}`: a member
/// id (what `members[].callSid` shows), a phone number (compared by digits) or an email
/// (compared ignoring case).
#[utoipa::path(
    delete,
    path = "/sessions/{id}/members/{memberId}",
    tag = "Evo sessions",
    operation_id = "evoDeleteChatMember",
    summary = "Remove a member (`DeleteChatMember`, seed 004).",
    params(("id" = String, Path, description = "The session id."), ("memberId" = String, Path, description = "The member to remove."), ("MemberToRemove" = Option<String>, Query, description = "The member to remove, when it differs from the path's (ServiceStack's `DeleteChatMember.MemberToRemove`)."), ("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    responses(
        (status = 200, description = "The session after the removal (seed 004).", content((confer_model::evo::SessionInfo = "application/json", example = json!(crate::openapi::sample("delete_member_response"))), (confer_model::evo::SessionInfo = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn remove_member(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    uri: Uri,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let actor = authenticate(&state.app, &headers).await?;
        require_user_role(&actor, "DeleteChatMember")?;
        let Path((session_id, member_id)) = path.map_err(path_error)?;
        let member_id = strip_format_suffix(uri.path(), member_id);
        let request = DeleteChatMember {
            session_id: Some(session_id),
            member_id: Some(member_id),
            member_to_remove: query_value(query.as_deref(), "MemberToRemove"),
        };
        let session_id = request.session_id.clone().unwrap_or_default();
        let key = idempotency_key(
            &headers,
            "DELETE",
            &format!("/sessions/{session_id}/members"),
            &request,
        )?;
        let command = Command::RemoveSessionMember {
            session: ConferenceId::new(session_id),
            member_id: request.member_id,
            member_to_remove: request.member_to_remove,
        };
        execute(&state.app, &actor, command, key).await
    }
    .await;
    let outcome = match &result {
        Ok(executed) if executed.replayed => "replayed".to_owned(),
        Ok(_) => "removed".to_owned(),
        Err(error) => error.outcome(),
    };
    state.app.metrics.record_removal("evo", &outcome);
    respond(
        format,
        result.and_then(|executed| reply_session(format, &executed.conference)),
    )
}

/// `DELETE /sessions/{id}`: ends the session for everyone.
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "Evo sessions",
    operation_id = "evoEndSession",
    summary = "End a session.",
    params(("id" = String, Path, description = "The session id."), ("format" = Option<String>, Query, description = "`json` or `jsv`: the reply's format (else `Accept`, default JSON).")),
    responses(
        (status = 200, description = "The session, ended.", content((confer_model::evo::SessionInfo = "application/json"), (confer_model::evo::SessionInfo = "text/jsv"))),
        crate::openapi::Errors,
    ),
    security(("basic" = []), ("evo_session" = []), ("evo_permanent_session" = []))
)]
pub async fn end(
    State(state): State<Arc<EvoState>>,
    Negotiated(format): Negotiated,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let actor = authenticate(&state.app, &headers).await?;
        require_user_role(&actor, "EndSession")?;
        let id = strip_format_suffix(uri.path(), path_value(path)?);
        let key = idempotency_key(&headers, "DELETE", &format!("/sessions/{id}"), &())?;
        let command = Command::EndSession {
            session: ConferenceId::new(id),
        };
        let executed = execute(&state.app, &actor, command, key).await?;
        reply_session(format, &executed.conference)
    }
    .await;
    respond(format, result)
}

/// Runs a command. A session of another account is "not found", exactly as one that does not
/// exist (the core answers both the same way): a caller cannot tell them apart.
async fn execute(
    app: &App,
    actor: &Actor,
    command: Command,
    key: Option<confer_app::engine::IdempotencyKey>,
) -> Result<Executed, EvoError> {
    Ok(app.engine.execute(actor, command, key).await?)
}

/// The session with this id in one of the actor's accounts: 404 when none has it (whether or not
/// another account has a session of that id: the same reply, and the same work), 403 when the
/// actor lacks the role in the session's account.
async fn visible_session(app: &App, actor: &Actor, id: &str) -> Result<Conference, EvoError> {
    let not_found = || {
        EvoError::Domain(DomainError::ConferenceNotFound {
            noun: ConferenceNoun::Session,
            id: ConferenceId::new(id),
        })
    };
    // Only the actor's accounts are looked in: another account's session of the same id is
    // another session, and not theirs to see.
    let conference = app
        .engine
        .load_session(actor, id)
        .await?
        .ok_or_else(not_found)?;
    let session = conference.as_session().ok_or_else(not_found)?;
    if !actor.is_evo_user_in(&session.account_id) {
        return Err(DomainError::MissingRole {
            operation: "GetSession",
            role: confer_core::Role::User,
        }
        .into());
    }
    Ok(conference)
}

fn reply_session(format: Format, conference: &Conference) -> Result<Response, EvoError> {
    let info = session_info(conference).ok_or_else(|| {
        EvoError::Internal(format!("conference {} is not a session", conference.id).into())
    })?;
    reply(format, StatusCode::OK, &info)
}

fn respond(format: Format, result: Result<Response, EvoError>) -> Response {
    result.unwrap_or_else(|error| error.render(format))
}

fn path_value(path: Result<Path<String>, PathRejection>) -> Result<String, EvoError> {
    path.map(|Path(value)| value).map_err(path_error)
}

fn path_error(rejection: PathRejection) -> EvoError {
    EvoError::BadParameter {
        field: "path",
        message: rejection.body_text(),
    }
}

/// Non-blank text, trimmed.
fn given(value: Option<String>) -> Option<String> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// An id a client chose: it must fit in one path segment and not look like a format suffix.
fn checked_id(field: &'static str, id: String) -> Result<String, EvoError> {
    let fits = id.chars().count() <= MAX_ID_LEN
        && !id
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '?' | '#' | '\\'))
        && Format::of_suffix(&id).is_none();
    if fits {
        Ok(id)
    } else {
        Err(EvoError::BadParameter {
            field,
            message: format!(
                "{field} must be at most {MAX_ID_LEN} characters without '/', '?', '#', '\\' or control characters, and must not end in .json or .jsv"
            ),
        })
    }
}

/// A new random id (128 bits, hex) with a prefix.
fn random_id(prefix: &str) -> Result<String, EvoError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| EvoError::Internal(error.to_string().into()))?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("{prefix}{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_limits() {
        assert_eq!(
            Paging::of_query(None).unwrap(),
            Paging {
                page: 0,
                count_per_page: DEFAULT_COUNT_PER_PAGE,
                all: false
            }
        );
        let paging = Paging::of_query(Some("Page=2&CountPerPage=5&all=TRUE")).unwrap();
        assert_eq!(
            (paging.page, paging.count_per_page, paging.all),
            (2, 5, true)
        );
        for bad in [
            "page=-1",
            "countPerPage=0",
            "countPerPage=1001",
            "page=x",
            "all=maybe",
        ] {
            assert!(Paging::of_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids_must_fit_a_path_segment() {
        assert!(checked_id("Id", "s-1".into()).is_ok());
        for bad in ["a/b", "x.json", "y.jsv", "tab\t"] {
            assert!(checked_id("Id", bad.into()).is_err(), "{bad}");
        }
        assert!(checked_id("Id", "z".repeat(MAX_ID_LEN + 1)).is_err());
        let id = random_id("m").unwrap();
        assert_eq!(id.len(), 33);
        assert!(id.starts_with('m'));
    }

    #[test]
    fn a_user_of_one_account_may_leave_it_out() {
        let actor = Actor::new("u", "u")
            .with_role(confer_core::Role::User)
            .with_account("acme");
        let Command::CreateSession(new) =
            new_session_command(&actor, NewSession::default()).unwrap()
        else {
            panic!("not a CreateSession");
        };
        assert_eq!(new.account_id.as_str(), "acme");
        assert_eq!(new.account_name, "acme");
        assert_eq!(new.id.as_str().len(), 32);
        let two = actor.with_account("other");
        assert!(new_session_command(&two, NewSession::default()).is_err());
    }
}
