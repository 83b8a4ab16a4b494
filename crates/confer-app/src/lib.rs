//! Confer's application layer, shared by every dialect (GWS, Evo, gRPC): the [`App`] a request
//! handler gets, the [`engine`] that runs domain commands against the store, users and
//! authentication, configuration, metrics and health.

pub mod auth;
pub mod cache;
pub mod config;
pub mod demo;
pub mod engine;
pub mod health;
pub mod history;
pub mod metrics;
pub mod retention;
pub mod store;
pub mod telemetry;
pub mod users;

use std::sync::Arc;

use anyhow::Context;
use confer_store::Store;

use crate::{
    auth::{
        Authenticator,
        keys::{KeyFileWatch, KeySource},
        pool::HashPool,
    },
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
        let source = KeySource::resolve(config.session_key_file.clone());
        let keys = source
            .load_or_create()
            .context("loading the session signing keys")?;
        forget_key_kept_in_the_store(store.as_ref()).await?;
        let pool = match config.password_workers {
            Some(workers) => HashPool::new(workers, 2 * workers.max(1)),
            None => HashPool::per_core(),
        };
        let app = Arc::new(Self {
            engine: Engine::with_cache(
                store.clone(),
                metrics.clone(),
                config.limits,
                Arc::new(cache::ConferenceCache::new(config.cached_conferences)),
            ),
            auth: Authenticator::with_pool(store.clone(), keys, config.session_ttl, pool),
            store,
            metrics,
            config,
        });
        if let KeySource::File(path) = source {
            spawn_key_reloader(&app, path);
        }
        retention::spawn_pruner(&app);
        Ok(app)
    }
}

/// Earlier versions kept the signing key in the settings table, where a copy of the database
/// could forge sessions: it is deleted (the key file replaces it; sessions it signed end once).
async fn forget_key_kept_in_the_store(store: &dyn Store) -> anyhow::Result<()> {
    if store
        .delete_setting(LEGACY_KEY_SETTING)
        .await
        .context("deleting the session key an earlier version kept in the store")?
    {
        tracing::warn!(
            "deleted the session signing key an earlier version kept in the database; \
             sessions it signed have ended"
        );
    }
    Ok(())
}

/// The settings key earlier versions kept the signing key under.
const LEGACY_KEY_SETTING: &str = "session_signing_key";

/// How often the key file is checked for a rotation.
const KEY_FILE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Re-reads the key file when it changes (`confer keys rotate`, or an operator's edit), for as
/// long as the app lives.
fn spawn_key_reloader(app: &Arc<App>, path: std::path::PathBuf) {
    let weak = Arc::downgrade(app);
    let mut watch = KeyFileWatch::new(path);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEY_FILE_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            // A stat of one small file: not worth a blocking-pool hop.
            if let Some(keys) = watch.changed() {
                tracing::info!(signing = %keys.current().id(), keys = keys.keys().len(), "session keys reloaded");
                app.auth.set_keys(keys);
            }
        }
    });
}
