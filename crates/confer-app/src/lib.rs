//! Confer's application layer, shared by every dialect (GWS, Evo, gRPC): the [`App`] a request
//! handler gets, the [`engine`] that runs domain commands against the store, users and
//! authentication, configuration, metrics and health.

pub mod auth;
pub mod config;
pub mod demo;
pub mod engine;
pub mod health;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod users;

use std::sync::Arc;

use anyhow::Context;
use confer_store::Store;

use crate::{
    auth::{Authenticator, tokens::SigningKey},
    config::ServeConfig,
    engine::Engine,
    metrics::Metrics,
};

/// Everything a request handler may need; one per server, shared as `Arc<App>`.
pub struct App {
    pub config: ServeConfig,
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub auth: Authenticator,
    pub metrics: Arc<Metrics>,
}

impl App {
    /// The base URL clients reach this server at (`http://127.0.0.1:8080`), without a trailing
    /// slash: `--public-url`, or the bound `--listen` address.
    pub fn public_url(&self) -> String {
        self.config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.config.listen))
    }

    /// Opens the store the config names and builds the application on it.
    pub async fn open(config: ServeConfig) -> anyhow::Result<Arc<Self>> {
        let store = crate::store::open(&config).await?;
        Self::on_store(config, store).await
    }

    /// Builds the application on an open store.
    pub async fn on_store(config: ServeConfig, store: Arc<dyn Store>) -> anyhow::Result<Arc<Self>> {
        let metrics = Metrics::new();
        let key = signing_key(store.as_ref()).await?;
        Ok(Arc::new(Self {
            engine: Engine::new(store.clone(), metrics.clone()),
            auth: Authenticator::new(store.clone(), key),
            store,
            metrics,
            config,
        }))
    }
}

/// The key that signs sessions, shared by every node through the store.
async fn signing_key(store: &dyn Store) -> anyhow::Result<SigningKey> {
    let candidate = SigningKey::random().to_hex();
    let stored = store
        .get_or_insert_setting("session_signing_key", &candidate)
        .await
        .context("reading the session signing key")?;
    SigningKey::from_hex(&stored).context("the stored session signing key is malformed")
}
