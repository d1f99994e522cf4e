//! NIP-90 for text generation: the job request (kind 5050), feedback (kind 7000) and the result
//! (kind 6050), written and read here.
//!
//! NIP-90 is marked "unrecommended" upstream and rust-nostr dropped its helpers after 0.44, so
//! the few tags this backend needs are handled here, strictly: an event of the wrong kind, with
//! a bad signature, for another job, or with a malformed tag is an error, never a guess.

use nostr::{Event, EventBuilder, EventId, JsonUtil, Keys, Kind, PublicKey, Tag};

/// The job kind of text generation.
pub const KIND_TEXT_GENERATION: u16 = 5050;
/// The kind of job feedback.
pub const KIND_FEEDBACK: u16 = 7000;

/// The result kind of job kind `job_kind` (5000–5999 answer with 6000–6999), or `None` for a
/// kind that is not a job request.
pub fn result_kind(job_kind: u16) -> Option<u16> {
    (5000..=5999)
        .contains(&job_kind)
        .then(|| job_kind.saturating_add(1000))
}

/// A NIP-90 event could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Nip90Error {
    /// The event is not of the kind expected.
    #[error("event of kind {found} where kind {expected} was expected")]
    WrongKind {
        /// The kind expected.
        expected: u16,
        /// The kind found.
        found: u16,
    },
    /// The event's signature or id does not check.
    #[error("event `{id}` has an invalid signature or id")]
    BadSignature {
        /// The event's id, as it claims.
        id: String,
    },
    /// The event answers another job.
    #[error("event answers job `{found}`, not this one")]
    OtherJob {
        /// The job it names.
        found: String,
    },
    /// A tag is missing, repeated, or not what NIP-90 says.
    #[error("malformed NIP-90 event: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The event could not be built or signed.
    #[error("cannot build a NIP-90 event: {reason}")]
    Build {
        /// What failed.
        reason: String,
    },
}

fn malformed(reason: impl Into<String>) -> Nip90Error {
    Nip90Error::Malformed {
        reason: reason.into(),
    }
}

/// A job request for text generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// The job kind (5050 for text generation).
    pub kind: u16,
    /// The prompt, sent as the `i` tag with input type `text`.
    pub prompt: String,
    /// The model, as a `param`.
    pub model: Option<String>,
    /// The most output tokens, as a `param`.
    pub max_tokens: Option<u64>,
    /// The temperature, as a `param`: a decimal number between 0 and 2, kept as text.
    pub temperature: Option<String>,
    /// The most the customer will pay, in millisats (`bid`).
    pub bid_msats: Option<u64>,
    /// Where the service provider should publish its answers (`relays`).
    pub relays: Vec<String>,
    /// The one service provider asked (`p`); `None` lets any provider answer.
    pub service: Option<PublicKey>,
}

impl JobRequest {
    /// The request as an event signed by `keys`.
    pub fn to_event(&self, keys: &Keys) -> Result<Event, Nip90Error> {
        let build = |e: &dyn std::fmt::Display| Nip90Error::Build {
            reason: e.to_string(),
        };
        let mut tags: Vec<Vec<String>> = vec![vec!["i".into(), self.prompt.clone(), "text".into()]];
        if let Some(model) = &self.model {
            tags.push(vec!["param".into(), "model".into(), model.clone()]);
        }
        if let Some(max) = self.max_tokens {
            tags.push(vec!["param".into(), "max_tokens".into(), max.to_string()]);
        }
        if let Some(t) = &self.temperature {
            tags.push(vec!["param".into(), "temperature".into(), t.clone()]);
        }
        if let Some(bid) = self.bid_msats {
            tags.push(vec!["bid".into(), bid.to_string()]);
        }
        if !self.relays.is_empty() {
            let mut relays = vec!["relays".to_owned()];
            relays.extend(self.relays.iter().cloned());
            tags.push(relays);
        }
        if let Some(service) = self.service {
            tags.push(vec!["p".into(), service.to_hex()]);
        }
        let tags = tags
            .into_iter()
            .map(Tag::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build(&e))?;
        EventBuilder::new(Kind::from(self.kind), "")
            .tags(tags)
            .sign_with_keys(keys)
            .map_err(|e| build(&e))
    }

    /// Reads a job request (what a service provider does).
    pub fn from_event(event: &Event) -> Result<Self, Nip90Error> {
        let kind = event.kind.as_u16();
        if result_kind(kind).is_none() {
            return Err(Nip90Error::WrongKind {
                expected: KIND_TEXT_GENERATION,
                found: kind,
            });
        }
        verified(event)?;
        let mut request = JobRequest {
            kind,
            prompt: String::new(),
            model: None,
            max_tokens: None,
            temperature: None,
            bid_msats: None,
            relays: Vec::new(),
            service: None,
        };
        let mut inputs = 0;
        for tag in event.tags.iter() {
            match tag.as_slice() {
                [name, value, input_type, ..] if name == "i" => {
                    if input_type != "text" {
                        return Err(malformed(format!("input type `{input_type}`, not `text`")));
                    }
                    inputs += 1;
                    request.prompt = value.clone();
                }
                [name, ..] if name == "i" => return Err(malformed("an `i` tag without a type")),
                [name, key, value] if name == "param" => request.param(key, value)?,
                [name, value] if name == "bid" => {
                    once(request.bid_msats.is_some(), "bid")?;
                    request.bid_msats = Some(parse_msats(value)?);
                }
                [name, urls @ ..] if name == "relays" => request.relays.extend(urls.to_vec()),
                [name, key, ..] if name == "p" => {
                    once(request.service.is_some(), "p")?;
                    request.service =
                        Some(PublicKey::from_hex(key).map_err(|_| malformed("a `p` tag's key"))?);
                }
                [name, ..] if name == "param" || name == "bid" => {
                    return Err(malformed(format!("a `{name}` tag of the wrong length")));
                }
                _ => {}
            }
        }
        if inputs != 1 {
            return Err(malformed(format!("{inputs} `i` tags, not one")));
        }
        Ok(request)
    }

    fn param(&mut self, key: &str, value: &str) -> Result<(), Nip90Error> {
        match key {
            "model" => {
                once(self.model.is_some(), "param model")?;
                self.model = Some(value.to_owned());
            }
            "max_tokens" => {
                once(self.max_tokens.is_some(), "param max_tokens")?;
                self.max_tokens = Some(parse_msats(value)?);
            }
            "temperature" => {
                once(self.temperature.is_some(), "param temperature")?;
                self.temperature = Some(check_temperature(value)?);
            }
            _ => {}
        }
        Ok(())
    }
}

/// `value` if it is a decimal between 0 and 2 (digits, at most one point).
pub fn check_temperature(value: &str) -> Result<String, Nip90Error> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let in_range = match whole {
        "0" | "1" => true,
        "2" => fraction.bytes().all(|b| b == b'0'),
        _ => false,
    };
    if whole.is_empty() || !digits(fraction) || !in_range || fraction.len() > 6 {
        return Err(malformed(format!(
            "temperature `{value}` is not a decimal between 0 and 2"
        )));
    }
    Ok(value.to_owned())
}

fn once(already: bool, what: &str) -> Result<(), Nip90Error> {
    if already {
        return Err(malformed(format!("a second `{what}` tag")));
    }
    Ok(())
}

/// A whole number written in decimal digits only (no sign, no space), as amounts are.
fn parse_msats(value: &str) -> Result<u64, Nip90Error> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("`{value}` is not a whole number")));
    }
    value
        .parse()
        .map_err(|_| malformed(format!("`{value}` is too large")))
}

fn verified(event: &Event) -> Result<(), Nip90Error> {
    event.verify().map_err(|_| Nip90Error::BadSignature {
        id: event.id.to_hex(),
    })
}

/// The one `e` tag of `event`, which must name `job`.
fn answers(event: &Event, job: &EventId) -> Result<(), Nip90Error> {
    let mut named = event
        .tags
        .iter()
        .filter(|t| t.as_slice().first().is_some_and(|n| n == "e"))
        .map(|t| t.as_slice().get(1).cloned().unwrap_or_default());
    let (Some(first), None) = (named.next(), named.next()) else {
        return Err(malformed("not exactly one `e` tag"));
    };
    if first != job.to_hex() {
        return Err(Nip90Error::OtherJob { found: first });
    }
    Ok(())
}

/// An `amount` tag: millisats, and the invoice to pay them with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    /// The amount asked, in millisats.
    pub msats: u64,
    /// A BOLT11 invoice for it, when one is given.
    pub bolt11: Option<String>,
}

impl Amount {
    fn tag(&self) -> Vec<String> {
        let mut tag = vec!["amount".to_owned(), self.msats.to_string()];
        tag.extend(self.bolt11.clone());
        tag
    }
}

/// The one `amount` tag of `event`, if it has one.
fn amount(event: &Event) -> Result<Option<Amount>, Nip90Error> {
    let mut found = None;
    for tag in event.tags.iter() {
        let amount = match tag.as_slice() {
            [name, msats] if name == "amount" => Amount {
                msats: parse_msats(msats)?,
                bolt11: None,
            },
            [name, msats, bolt11] if name == "amount" => Amount {
                msats: parse_msats(msats)?,
                bolt11: Some(bolt11.clone()),
            },
            [name, ..] if name == "amount" => {
                return Err(malformed("an `amount` tag of the wrong length"));
            }
            _ => continue,
        };
        once(found.is_some(), "amount")?;
        found = Some(amount);
    }
    Ok(found)
}

/// Where a job stands, as its service provider says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Pay before the work goes on (with an `amount`).
    PaymentRequired,
    /// The provider is working on it.
    Processing,
    /// The provider failed, or refuses.
    Error,
    /// The provider is done.
    Success,
    /// A partial result.
    Partial,
}

impl JobStatus {
    /// The status as NIP-90 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::PaymentRequired => "payment-required",
            JobStatus::Processing => "processing",
            JobStatus::Error => "error",
            JobStatus::Success => "success",
            JobStatus::Partial => "partial",
        }
    }

    fn parse(text: &str) -> Result<Self, Nip90Error> {
        [
            JobStatus::PaymentRequired,
            JobStatus::Processing,
            JobStatus::Error,
            JobStatus::Success,
            JobStatus::Partial,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| malformed(format!("unknown status `{text}`")))
    }
}

/// Job feedback (kind 7000).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The service provider that sent it.
    pub provider: PublicKey,
    /// The status.
    pub status: JobStatus,
    /// The status's extra text, if any.
    pub extra: Option<String>,
    /// What the provider asks to be paid, with `payment-required`.
    pub amount: Option<Amount>,
}

impl Feedback {
    /// Feedback with `status` on `job`, for `customer`, signed by `keys` (what a service provider
    /// does).
    pub fn to_event(&self, job: &Event, keys: &Keys) -> Result<Event, Nip90Error> {
        let mut status = vec!["status".to_owned(), self.status.as_str().to_owned()];
        status.extend(self.extra.clone());
        let mut tags = vec![
            status,
            vec!["e".into(), job.id.to_hex()],
            vec!["p".into(), job.pubkey.to_hex()],
        ];
        tags.extend(self.amount.as_ref().map(Amount::tag));
        sign(KIND_FEEDBACK, "", tags, keys)
    }

    /// Reads feedback on `job`: kind 7000, signed, exactly one `e` tag naming the job, exactly
    /// one known status, at most one well-formed `amount`.
    pub fn from_event(event: &Event, job: &EventId) -> Result<Self, Nip90Error> {
        if event.kind.as_u16() != KIND_FEEDBACK {
            return Err(Nip90Error::WrongKind {
                expected: KIND_FEEDBACK,
                found: event.kind.as_u16(),
            });
        }
        verified(event)?;
        answers(event, job)?;
        let mut status = None;
        let mut extra = None;
        for tag in event.tags.iter() {
            match tag.as_slice() {
                [name, value, rest @ ..] if name == "status" => {
                    once(status.is_some(), "status")?;
                    status = Some(JobStatus::parse(value)?);
                    extra = rest.first().cloned();
                }
                [name] if name == "status" => return Err(malformed("an empty `status` tag")),
                _ => {}
            }
        }
        let status = status.ok_or_else(|| malformed("no `status` tag"))?;
        Ok(Feedback {
            provider: event.pubkey,
            status,
            extra,
            amount: amount(event)?,
        })
    }
}

/// A job result (kind 6050 for text generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// The service provider that sent it.
    pub provider: PublicKey,
    /// The output.
    pub content: String,
    /// What the provider asks to be paid, if it asks after the work.
    pub amount: Option<Amount>,
    /// When the provider says it made the result, in Unix seconds (0 in a result being built:
    /// the event is stamped when signed).
    pub created: u64,
}

impl JobResult {
    /// The result `content` of `job`, signed by `keys` (what a service provider does).
    pub fn to_event(&self, job: &Event, keys: &Keys) -> Result<Event, Nip90Error> {
        let kind = result_kind(job.kind.as_u16()).ok_or(Nip90Error::WrongKind {
            expected: KIND_TEXT_GENERATION,
            found: job.kind.as_u16(),
        })?;
        let mut tags = vec![
            vec!["request".into(), job.as_json()],
            vec!["e".into(), job.id.to_hex()],
            vec!["p".into(), job.pubkey.to_hex()],
        ];
        tags.extend(self.amount.as_ref().map(Amount::tag));
        sign(kind, &self.content, tags, keys)
    }

    /// Reads the result of `job`, of kind `kind`: signed, exactly one `e` tag naming the job.
    pub fn from_event(event: &Event, job: &EventId, kind: u16) -> Result<Self, Nip90Error> {
        if event.kind.as_u16() != kind {
            return Err(Nip90Error::WrongKind {
                expected: kind,
                found: event.kind.as_u16(),
            });
        }
        verified(event)?;
        answers(event, job)?;
        Ok(JobResult {
            provider: event.pubkey,
            content: event.content.clone(),
            amount: amount(event)?,
            created: event.created_at.as_secs(),
        })
    }
}

fn sign(
    kind: u16,
    content: &str,
    tags: Vec<Vec<String>>,
    keys: &Keys,
) -> Result<Event, Nip90Error> {
    let build = |e: &dyn std::fmt::Display| Nip90Error::Build {
        reason: e.to_string(),
    };
    let tags = tags
        .into_iter()
        .map(Tag::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| build(&e))?;
    EventBuilder::new(Kind::from(kind), content)
        .tags(tags)
        .sign_with_keys(keys)
        .map_err(|e| build(&e))
}
