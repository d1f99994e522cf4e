use std::error::Error;
use std::fmt;

/// An error and its causes on one line: each message once, joined by `: `.
///
/// The errors of this workspace state their own context only and keep their cause as a
/// `#[source]`, so `error.to_string()` alone drops the cause. Whoever shows an error to a person (a
/// command line, an HTTP answer, a log line, a hook's block reason) shows the whole chain with this
/// type instead:
///
/// ```
/// use ao_types::Report;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot read the configuration `ao.toml`")]
/// struct ReadConfig(#[source] std::io::Error);
///
/// let error = ReadConfig(std::io::Error::other("permission denied"));
/// assert_eq!(error.to_string(), "cannot read the configuration `ao.toml`");
/// assert_eq!(
///     Report::new(&error).to_string(),
///     "cannot read the configuration `ao.toml`: permission denied"
/// );
/// ```
///
/// A cause is left out when the line already ends with its message: a wrapper that forwards its
/// cause's message (`#[error(transparent)]`, `#[error("{0}")]`), or an error of another library
/// that prints its cause in its own message, does not make a cause appear twice. Empty messages
/// are left out too. This is the single-line form of the standard library's unstable
/// `std::error::Report`.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    error: &'a (dyn Error + 'a),
}

impl<'a> Report<'a> {
    /// The report of `error` and its chain of sources.
    pub fn new(error: &'a (dyn Error + 'a)) -> Self {
        Self { error }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.error.to_string();
        let mut cause = self.error.source();
        while let Some(error) = cause {
            let message = error.to_string();
            if !message.is_empty() && !ends_with_message(&line, &message) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&message);
            }
            cause = error.source();
        }
        f.write_str(&line)
    }
}

/// Whether `line` is `message`, or ends with `: message`.
fn ends_with_message(line: &str, message: &str) -> bool {
    line.strip_suffix(message)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with(": "))
}
