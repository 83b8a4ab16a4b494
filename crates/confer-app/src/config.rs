//! `confer serve`'s settings: each one from (in order of precedence) its flag, its `CONFER_*`
//! environment variable, the `--config` TOML file, or its default.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

pub use confer_core::Limits;

use serde::Deserialize;

use crate::auth::{DEFAULT_SESSION_TTL, keys::DEFAULT_KEY_FILE};

/// Conferences kept in memory by default: a few tens of MB at the typical conference size.
pub const DEFAULT_CACHED_CONFERENCES: usize = 65_536;

/// The settings a server runs with, after every source has been merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// REST and CometD.
    pub listen: SocketAddr,
    /// gRPC.
    pub grpc_listen: SocketAddr,
    /// Where the embedded SQLite store keeps its file (unused with `database_url`).
    pub data_dir: PathBuf,
    /// A `postgres://` URL: use PostgreSQL instead of the embedded store.
    pub database_url: Option<String>,
    /// Load the seeds' world (users, the voice call, the chat, the Evo session) at start.
    pub demo: bool,
    /// How logs are written.
    pub log_format: LogFormat,
    /// GWS CSRF protection (`X-CSRF-HEADER`/`X-CSRF-TOKEN`); on unless turned off.
    pub csrf: bool,
    // Sign-in, sessions and request limits.
    /// How long a session lasts without use (renewed while used).
    pub session_ttl: Duration,
    /// The session signing keys (`CONFER_SESSION_KEYS` overrides it); by default
    /// `<data_dir>/session-keys`.
    pub session_key_file: PathBuf,
    /// Proxies whose `X-Forwarded-For` names the client (sign-in throttling by address).
    pub trusted_proxies: Vec<IpAddr>,
    /// Password verifications at once (default: one per core).
    pub password_workers: Option<usize>,
    /// Most conferences kept in memory for deciding commands and rendering notifications
    /// (`crate::cache`); 0 turns the cache off.
    pub cached_conferences: usize,
    /// How long the store keeps what it no longer needs (`crate::retention`).
    pub retention: Retention,
    /// What a request may ask of the domain: id and text lengths, participants per conference.
    pub limits: Limits,
    /// What one notification client may hold: subscriptions per session, sessions per user.
    pub notifications: NotificationLimits,
    /// How long a connection may take and how many may be open, on both listeners.
    pub connections: ConnectionLimits,
    /// The base URL clients reach this server at, used in the URIs GWS puts in replies and
    /// notifications (`http://host:port`); by default `http://` and the bound `--listen` address.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How long the store keeps what it no longer needs. Idempotency records keep their own 24 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A conference's events are pruned once it has not changed for this long (its current
    /// state is kept as the base of later events). A notification client can resume from at
    /// most this far back.
    pub events: Duration,
    /// An ended conference is deleted, with its events, once it has not changed for this long.
    pub ended_conferences: Duration,
}

impl Retention {
    pub const DEFAULT: Retention = Retention {
        events: Duration::from_secs(7 * 24 * 3600),
        ended_conferences: Duration::from_secs(7 * 24 * 3600),
    };
}

/// What one notification client may hold (CometD; gRPC `Subscribe` streams end with their
/// connection, which [`ConnectionLimits`] bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationLimits {
    /// Subscriptions one CometD session may hold; a subscribe beyond it is refused.
    pub max_subscriptions_per_session: usize,
    /// CometD sessions one user may hold; a handshake beyond it ends the user's least recently
    /// active session.
    pub max_sessions_per_user: usize,
}

impl NotificationLimits {
    pub const DEFAULT: Self = Self {
        max_subscriptions_per_session: 100,
        max_sessions_per_user: 64,
    };
}

/// How long a connection may take and how many may be open (each listener on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// An HTTP/1 request head must arrive whole within this, counted from when the connection
    /// starts waiting for it: the first request's, and each next one's on a kept-alive
    /// connection (so it is the idle keep-alive timeout too). A held long-poll or stream is
    /// not waiting for a head and is not cut.
    pub header_read_timeout: Duration,
    /// Open connections per listener; beyond it, new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open connections per client address and listener; beyond it, a new one is closed at
    /// once. The `--trusted-proxy` addresses are exempt (every client behind them shares
    /// their address).
    pub max_connections_per_address: usize,
    /// After SIGTERM, how long open connections may take to finish before the process exits
    /// anyway.
    pub shutdown_grace: Duration,
    /// Largest gRPC request message, in bytes (`RESOURCE_EXHAUSTED` beyond it).
    pub grpc_max_message_bytes: usize,
    /// Concurrent HTTP/2 streams per connection (gRPC calls, and h2c on the REST port).
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 connections are pinged this often when idle, and closed when a ping goes
    /// unanswered as long: dead peers do not hold connections.
    pub http2_keepalive: Duration,
}

impl ConnectionLimits {
    pub const DEFAULT: Self = Self {
        header_read_timeout: Duration::from_secs(20),
        max_connections: 10_000,
        max_connections_per_address: 1_000,
        shutdown_grace: Duration::from_secs(30),
        grpc_max_message_bytes: 64 * 1024,
        http2_max_concurrent_streams: 256,
        http2_keepalive: Duration::from_secs(30),
    };
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_DATA_DIR: &str = "./confer-data";

/// The same settings as written in a `--config` file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
    pub grpc_listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub demo: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub csrf: Option<bool>,
    pub session_ttl_secs: Option<u64>,
    pub session_key_file: Option<PathBuf>,
    pub trusted_proxies: Option<Vec<IpAddr>>,
    pub password_workers: Option<usize>,
    pub cached_conferences: Option<usize>,
    pub max_id_bytes: Option<usize>,
    pub max_text_bytes: Option<usize>,
    pub max_participants: Option<usize>,
    pub max_chat_messages: Option<usize>,
    pub cometd_max_subscriptions: Option<usize>,
    pub cometd_max_sessions_per_user: Option<usize>,
    pub event_retention_secs: Option<u64>,
    pub ended_conference_retention_secs: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub shutdown_grace_secs: Option<u64>,
    pub grpc_max_message_bytes: Option<usize>,
    pub http2_max_concurrent_streams: Option<u32>,
    pub http2_keepalive_secs: Option<u64>,
    pub public_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("--database-url must start with postgres:// or postgresql://, got {0:?}")]
    DatabaseUrl(String),
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// What the command line and environment said (clap merges those two); `None` = not given.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address for REST and CometD [default: 127.0.0.1:8080]
    #[arg(long, env = "CONFER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address for gRPC [default: 127.0.0.1:50051]
    #[arg(long, env = "CONFER_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// Directory of the embedded store [default: ./confer-data]
    #[arg(long, env = "CONFER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...) to use instead of the embedded store
    #[arg(long, env = "CONFER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Load the seed documents' world and print its credentials
    #[arg(long, env = "CONFER_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    /// Log format
    #[arg(long, env = "CONFER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// GWS CSRF protection [default: true]
    #[arg(long, env = "CONFER_CSRF")]
    pub csrf: Option<bool>,
    /// Session lifetime in seconds, renewed while the session is used [default: 28800, 8 h]
    #[arg(long, env = "CONFER_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
    /// File of session signing keys, created 0600 at first start; CONFER_SESSION_KEYS (hex keys)
    /// overrides it [default: <data-dir>/session-keys]
    #[arg(long, env = "CONFER_SESSION_KEY_FILE")]
    pub session_key_file: Option<PathBuf>,
    /// A proxy (IP address) whose X-Forwarded-For header names the client (repeatable)
    #[arg(
        long = "trusted-proxy",
        env = "CONFER_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,
    /// Password verifications at once; more wait briefly, then get 503 [default: one per core]
    #[arg(long, env = "CONFER_PASSWORD_WORKERS")]
    pub password_workers: Option<usize>,
    /// Most conferences kept in memory to decide commands on (idle ones leave first; the
    /// store stays the authority); 0 turns the cache off [default: 65536]
    #[arg(long, env = "CONFER_CACHED_CONFERENCES")]
    pub cached_conferences: Option<usize>,
    /// Seconds a conference's events are kept after its last change, and so how far back a
    /// notification client can resume from [default: 604800, 7 days]
    #[arg(long, env = "CONFER_EVENT_RETENTION_SECS")]
    pub event_retention_secs: Option<u64>,
    /// Seconds an ended conference is kept (readable, listed) after it ended [default: 604800,
    /// 7 days]
    #[arg(long, env = "CONFER_ENDED_CONFERENCE_RETENTION_SECS")]
    pub ended_conference_retention_secs: Option<u64>,
    /// Longest id a request may carry, in bytes [default: 256]
    #[arg(long, env = "CONFER_MAX_ID_BYTES")]
    pub max_id_bytes: Option<usize>,
    /// Longest text (chat message, user data value) a request may carry, in bytes [default: 16384]
    #[arg(long, env = "CONFER_MAX_TEXT_BYTES")]
    pub max_text_bytes: Option<usize>,
    /// Most participants in one conference [default: 64]
    #[arg(long, env = "CONFER_MAX_PARTICIPANTS")]
    pub max_participants: Option<usize>,
    /// Most messages in one chat's transcript [default: 10000]
    #[arg(long, env = "CONFER_MAX_CHAT_MESSAGES")]
    pub max_chat_messages: Option<usize>,
    /// Most subscriptions one CometD session may hold [default: 100]
    #[arg(long, env = "CONFER_COMETD_MAX_SUBSCRIPTIONS")]
    pub cometd_max_subscriptions: Option<usize>,
    /// Most CometD sessions one user may hold; a new one ends the least recently active
    /// [default: 64]
    #[arg(long, env = "CONFER_COMETD_MAX_SESSIONS_PER_USER")]
    pub cometd_max_sessions_per_user: Option<usize>,
    /// Seconds an HTTP/1 request head may take to arrive, also the idle keep-alive timeout
    /// [default: 20]
    #[arg(long, env = "CONFER_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Open connections per listener; more wait to be accepted [default: 10000]
    #[arg(long, env = "CONFER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections per client address and listener; more are closed at once (trusted
    /// proxies are exempt) [default: 1000]
    #[arg(long, env = "CONFER_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds a graceful stop waits for open connections before exiting anyway [default: 30]
    #[arg(long, env = "CONFER_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Largest gRPC request message in bytes [default: 65536]
    #[arg(long, env = "CONFER_GRPC_MAX_MESSAGE_BYTES")]
    pub grpc_max_message_bytes: Option<usize>,
    /// Concurrent HTTP/2 streams per connection [default: 256]
    #[arg(long, env = "CONFER_HTTP2_MAX_CONCURRENT_STREAMS")]
    pub http2_max_concurrent_streams: Option<u32>,
    /// Seconds between HTTP/2 keepalive pings, and to wait for their answer [default: 30]
    #[arg(long, env = "CONFER_HTTP2_KEEPALIVE_SECS")]
    pub http2_keepalive_secs: Option<u64>,
    /// Base URL for the URIs in GWS replies and notifications [default: http://<listen address>]
    #[arg(long, env = "CONFER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A TOML file with any of the settings above (snake_case keys)
    #[arg(long, env = "CONFER_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    /// Merges flags/environment over the config file over the defaults.
    pub fn resolve(&self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let database_url = self.database_url.clone().or(file.database_url);
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::DatabaseUrl(url.clone()));
        }
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        Ok(ServeConfig {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| parse_default(DEFAULT_LISTEN)),
            grpc_listen: self
                .grpc_listen
                .or(file.grpc_listen)
                .unwrap_or_else(|| parse_default(DEFAULT_GRPC_LISTEN)),
            data_dir: data_dir.clone(),
            database_url,
            demo: self.demo.or(file.demo).unwrap_or(false),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            csrf: self.csrf.or(file.csrf).unwrap_or(true),
            session_ttl: Duration::from_secs(
                self.session_ttl_secs
                    .or(file.session_ttl_secs)
                    .unwrap_or(DEFAULT_SESSION_TTL.as_secs())
                    .max(60),
            ),
            session_key_file: self
                .session_key_file
                .clone()
                .or(file.session_key_file)
                .unwrap_or_else(|| data_dir.join(DEFAULT_KEY_FILE)),
            trusted_proxies: if self.trusted_proxies.is_empty() {
                file.trusted_proxies.unwrap_or_default()
            } else {
                self.trusted_proxies.clone()
            },
            password_workers: self.password_workers.or(file.password_workers),
            cached_conferences: self
                .cached_conferences
                .or(file.cached_conferences)
                .unwrap_or(DEFAULT_CACHED_CONFERENCES),
            retention: {
                let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
                    flag.or(file)
                        .map_or(default, Duration::from_secs)
                        .max(Duration::from_secs(1))
                };
                Retention {
                    events: secs(
                        self.event_retention_secs,
                        file.event_retention_secs,
                        Retention::DEFAULT.events,
                    ),
                    ended_conferences: secs(
                        self.ended_conference_retention_secs,
                        file.ended_conference_retention_secs,
                        Retention::DEFAULT.ended_conferences,
                    ),
                }
            },
            limits: Limits {
                max_id_bytes: self
                    .max_id_bytes
                    .or(file.max_id_bytes)
                    .unwrap_or(Limits::DEFAULT.max_id_bytes),
                max_text_bytes: self
                    .max_text_bytes
                    .or(file.max_text_bytes)
                    .unwrap_or(Limits::DEFAULT.max_text_bytes),
                max_participants: self
                    .max_participants
                    .or(file.max_participants)
                    .unwrap_or(Limits::DEFAULT.max_participants),
                max_chat_messages: self
                    .max_chat_messages
                    .or(file.max_chat_messages)
                    .unwrap_or(Limits::DEFAULT.max_chat_messages),
            },
            notifications: NotificationLimits {
                max_subscriptions_per_session: self
                    .cometd_max_subscriptions
                    .or(file.cometd_max_subscriptions)
                    .unwrap_or(NotificationLimits::DEFAULT.max_subscriptions_per_session)
                    .max(1),
                max_sessions_per_user: self
                    .cometd_max_sessions_per_user
                    .or(file.cometd_max_sessions_per_user)
                    .unwrap_or(NotificationLimits::DEFAULT.max_sessions_per_user)
                    .max(1),
            },
            connections: {
                let d = ConnectionLimits::DEFAULT;
                let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
                    flag.or(file).map_or(default, Duration::from_secs)
                };
                ConnectionLimits {
                    header_read_timeout: secs(
                        self.header_read_timeout_secs,
                        file.header_read_timeout_secs,
                        d.header_read_timeout,
                    )
                    .max(Duration::from_secs(1)),
                    max_connections: self
                        .max_connections
                        .or(file.max_connections)
                        .unwrap_or(d.max_connections)
                        .max(1),
                    max_connections_per_address: self
                        .max_connections_per_address
                        .or(file.max_connections_per_address)
                        .unwrap_or(d.max_connections_per_address)
                        .max(1),
                    shutdown_grace: secs(
                        self.shutdown_grace_secs,
                        file.shutdown_grace_secs,
                        d.shutdown_grace,
                    ),
                    grpc_max_message_bytes: self
                        .grpc_max_message_bytes
                        .or(file.grpc_max_message_bytes)
                        .unwrap_or(d.grpc_max_message_bytes)
                        .max(1024),
                    http2_max_concurrent_streams: self
                        .http2_max_concurrent_streams
                        .or(file.http2_max_concurrent_streams)
                        .unwrap_or(d.http2_max_concurrent_streams)
                        .max(1),
                    http2_keepalive: secs(
                        self.http2_keepalive_secs,
                        file.http2_keepalive_secs,
                        d.http2_keepalive,
                    )
                    .max(Duration::from_secs(1)),
                }
            },
            public_url: self
                .public_url
                .clone()
                .or(file.public_url)
                .map(|url| url.trim_end_matches('/').to_owned()),
        })
    }
}

fn parse_default(addr: &str) -> SocketAddr {
    // The defaults are constants above; a test checks they parse.
    addr.parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        assert_eq!(DEFAULT_LISTEN.parse::<SocketAddr>().unwrap().port(), 8080);
        assert_eq!(
            DEFAULT_GRPC_LISTEN.parse::<SocketAddr>().unwrap().port(),
            50051
        );
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(!config.demo);
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confer.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndemo = true\ndata_dir = \"/var/confer\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            config: Some(path),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert!(config.demo);
        assert_eq!(config.data_dir, PathBuf::from("/var/confer"));
        assert_eq!(config.grpc_listen.port(), 50051);
    }

    #[test]
    fn a_bad_file_or_url_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confer.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = ServeArgs {
            config: Some(path),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `lisen`"), "{err}");
        let err = ServeArgs {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
    }
}
