//! The `[signing]` table: its checks, and the section as the signer crate reads it.

use toml::Spanned;

use super::sections::MAX_SIGNING_TIMEOUT_SECS;
use super::{Config, ConfigError, line_of};

impl Config {
    /// The `[signing]` table: at least one relay, each a `ws://` or `wss://` URL, and a timeout
    /// of 1 to [`MAX_SIGNING_TIMEOUT_SECS`](MAX_SIGNING_TIMEOUT_SECS) seconds.
    pub(super) fn check_signing(&self) -> Result<(), ConfigError> {
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        if signing.relays.get_ref().is_empty() {
            return Err(self.error_at(
                &signing.relays,
                "signing.relays is empty: name the relays the signer nodes listen on, such as \
                 [\"ws://127.0.0.1:7777\"] (`ao relay` runs one)"
                    .into(),
            ));
        }
        for relay in signing.relays.get_ref() {
            let url = relay.get_ref();
            if let Err(e) = nostr::RelayUrl::parse(url) {
                return Err(self.error_at(
                    relay,
                    format!(
                        "signing.relays: `{url}` is not a relay URL ({e}); give ws://host:port or wss://host"
                    ),
                ));
            }
        }
        let timeout = *signing.timeout_secs.get_ref();
        if !(1..=MAX_SIGNING_TIMEOUT_SECS).contains(&timeout) {
            return Err(ConfigError {
                line: self.signing_line(&signing.timeout_secs),
                message: format!(
                    "signing.timeout_secs is {timeout}; give 1 to {} seconds",
                    MAX_SIGNING_TIMEOUT_SECS
                ),
            });
        }
        Ok(())
    }

    /// The line of a `[signing]` value, or of the table when the value is a default.
    fn signing_line<T>(&self, spanned: &Spanned<T>) -> Option<usize> {
        let span = spanned.span();
        if span.start == 0 && span.end == 0 {
            return self
                .text
                .find("[signing]")
                .map(|at| line_of(&self.text, at));
        }
        Some(line_of(&self.text, span.start))
    }

    /// The files `[signing]` names exist (the group file and the coordinator's key), checked
    /// once the configuration file's directory is known; their contents are read when the
    /// orchestrator is built.
    pub(super) fn check_signing_files(&self) -> Result<(), ConfigError> {
        let Some(signing) = &self.signing else {
            return Ok(());
        };
        for (name, file, what) in [
            (
                "group",
                &signing.group,
                "the group file of the signer nodes' key (`ao keygen` writes it)",
            ),
            (
                "key",
                &signing.key,
                "this coordinator's transport key (`ao transport-key --out FILE` writes one)",
            ),
        ] {
            let path = self.resolve(file.get_ref());
            if !path.is_file() {
                return Err(self.error_at(
                    file,
                    format!(
                        "signing.{name}: `{}` does not exist or is not a file; it should be {what}",
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The `[signing]` section with its paths taken from the configuration file's directory, as
    /// the signer crate reads it; `None` without the section.
    pub fn signing(&self) -> Option<ao_signer::SigningConfig> {
        let signing = self.signing.as_ref()?;
        Some(ao_signer::SigningConfig {
            group: self.resolve(signing.group.get_ref()),
            relays: signing
                .relays
                .get_ref()
                .iter()
                .map(|r| r.get_ref().clone())
                .collect(),
            key: self.resolve(signing.key.get_ref()),
            timeout_secs: *signing.timeout_secs.get_ref(),
        })
    }
}
