/// Why a threshold operation failed. No variant carries secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// The threshold and total do not describe a FROST group.
    #[error(
        "a {threshold}-of-{total} group is not possible: FROST needs 2 <= threshold <= total <= 65535"
    )]
    InvalidConfig {
        /// The threshold given.
        threshold: u32,
        /// The total given.
        total: u32,
    },
    /// Fewer signers than the threshold.
    #[error("{given} signer(s) given but this group needs {threshold} to sign")]
    NotEnoughSigners {
        /// How many were given.
        given: usize,
        /// How many are needed.
        threshold: u16,
    },
    /// The same signer appears twice.
    #[error("signer {index} appears twice; each signer signs once")]
    DuplicateSigner {
        /// The signer.
        index: u16,
    },
    /// A share, commitment or partial belongs to another group, or names a signer the group
    /// does not have.
    #[error("signer {index} does not belong to this group (group key {group_pubkey})")]
    WrongGroup {
        /// The signer.
        index: u16,
        /// The group's key, hex.
        group_pubkey: String,
    },
    /// A signer's partial signature does not verify: that signer misbehaved or its share is
    /// corrupt.
    #[error("the partial signature of signer {index} is invalid")]
    BadPartialSignature {
        /// The culprit.
        index: u16,
    },
    /// A partial signature is missing for a signer who committed.
    #[error("signer {index} committed but sent no partial signature")]
    MissingPartial {
        /// The signer.
        index: u16,
    },
    /// The secret key to split does not parse.
    #[error("the secret key is not an nsec or 64 hex characters")]
    InvalidSecretKey,
    /// A message, signature or key is malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was malformed.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A distributed key generation message is missing, duplicated or does not verify, or key
    /// generation produced no share for a signer.
    #[error("key generation failed: {reason}")]
    Keygen {
        /// Why.
        reason: String,
    },
    /// The event to sign is not the group's.
    #[error("the event's author {author} is not the group key {group_pubkey}")]
    EventAuthor {
        /// The event's pubkey.
        author: String,
        /// The group key.
        group_pubkey: String,
    },
    /// An agent profile event is not valid.
    #[error("invalid agent profile: {reason}")]
    Profile {
        /// Why.
        reason: String,
    },
    /// An agent profile describes an identity that is not valid (a key that does not parse, a
    /// threshold configuration that does not hold).
    #[error("invalid agent profile: the identity it describes is not valid")]
    ProfileIdentity(#[source] ao_identity::IdentityError),
    /// A share file could not be decrypted.
    #[error("cannot open the share: wrong passphrase, or the file was corrupted or altered")]
    Decrypt,
    /// A share file or group file is not in the expected format.
    #[error("not a valid {what}: {reason}")]
    BadFile {
        /// Which kind of file.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The passphrase is empty.
    #[error("the passphrase is empty; a share must be encrypted with a passphrase")]
    EmptyPassphrase,
    /// The share could not be encrypted; nothing was written.
    #[error("cannot encrypt the share; nothing was written, try again")]
    Encrypt,
    /// A refresh would have changed the group key. The old shares were kept and stay valid.
    #[error(
        "the refresh would change the group key, so it was not done; the current shares stay valid"
    )]
    RefreshChangedKey,
    /// The signature aggregated from valid-looking partial signatures does not verify under the
    /// group key.
    #[error(
        "the aggregated signature does not verify under the group key; a share may be corrupt, sign with other signers"
    )]
    AggregateInvalid,
    /// The threshold-signed Nostr event does not verify.
    #[error(
        "the threshold-signed event does not verify; a share may be corrupt, sign with other signers"
    )]
    SignedEventInvalid(#[source] nostr::event::Error),
    /// The FROST library refused, for a reason not covered above.
    #[error(
        "the FROST library refused the operation; a share, commitment or message may be corrupt or belong to another group"
    )]
    Frost(#[source] frost_secp256k1_tr::Error),
}
