//! Opens the store `serve` (and `users`) run on: PostgreSQL with `--database-url`, otherwise the
//! embedded SQLite file in `--data-dir`.

use std::sync::Arc;

use anyhow::Context;
use confer_store::{PgStore, SqliteStore, Store};

use crate::config::ServeConfig;

pub async fn open(config: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.database_url {
        Some(url) => Arc::new(
            PgStore::connect(url)
                .await
                .context("connecting to PostgreSQL (--database-url)")?,
        ),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("creating the data directory {}", config.data_dir.display())
            })?;
            Arc::new(SqliteStore::open(&config.data_dir).await.with_context(|| {
                format!(
                    "opening the embedded store in {}",
                    config.data_dir.display()
                )
            })?)
        }
    })
}
