//! A schema of its own on a shared server, for tests and benchmarks: each gets a clean database
//! without creating one, and leaves nothing behind.

use super::error::PgError;
use super::runtime::Worker;

/// The server tests use: `AO_TEST_DATABASE_URL`, else the local server with trust
/// authentication (`postgres://postgres@127.0.0.1:5432/test`).
pub fn test_server_url() -> String {
    std::env::var("AO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema on a server, dropped (with everything in it) when this goes.
#[derive(Debug)]
pub struct ScratchSchema {
    server: String,
    name: String,
    url: String,
}

impl ScratchSchema {
    /// Creates a schema with a random name on the server at `server_url`.
    pub fn create(server_url: &str) -> Result<Self, PgError> {
        let bytes: [u8; 8] = rand::random();
        let name = format!(
            "ao_scratch_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        execute(server_url, format!("CREATE SCHEMA {name}"))?;
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{separator}options=-csearch_path%3D{name}");
        Ok(Self {
            server: server_url.to_owned(),
            name,
            url,
        })
    }

    /// The URL of a database whose every table lives in this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `sql` in this schema directly, behind every store's back (as an agent with the
    /// database's password would).
    pub fn execute(&self, sql: &str) -> Result<(), PgError> {
        execute(&self.url, sql.to_owned())
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        let _ = execute(&self.server, format!("DROP SCHEMA {} CASCADE", self.name));
    }
}

/// Runs one statement on the server at `url`, on a runtime of its own.
fn execute(url: &str, sql: String) -> Result<(), PgError> {
    let config: tokio_postgres::Config = url.parse().map_err(|source| PgError::Url { source })?;
    let worker = Worker::start()?;
    worker.block_on(async move {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        client.batch_execute(&sql).await?;
        drop(client);
        let _ = connection.await;
        Ok(())
    })
}
