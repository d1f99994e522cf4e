use nostr::PublicKey;

/// A string that is not a secp256k1 x-only public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a secp256k1 x-only public key: give 64 hex characters or an npub")]
pub struct InvalidPublicKey {
    /// The input, cut to its first 80 characters so that a huge input cannot flood a log.
    pub shown: String,
}

/// Parses a secp256k1 x-only public key given as 64 hex characters or as a bech32 `npub`.
///
/// Unlike a plain hex decode, this checks that the 32 bytes are the x coordinate of a point on the
/// curve: a key that no secret key can match is refused.
pub fn parse_public_key(input: &str) -> Result<PublicKey, InvalidPublicKey> {
    let invalid = || InvalidPublicKey {
        shown: input.chars().take(80).collect(),
    };
    let trimmed = input.trim();
    let key = if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        PublicKey::from_hex(trimmed).map_err(|_| invalid())?
    } else if trimmed.starts_with("npub1") {
        PublicKey::parse(trimmed).map_err(|_| invalid())?
    } else {
        return Err(invalid());
    };
    // `PublicKey` only holds bytes; the point must also lie on the curve.
    key.xonly().map_err(|_| invalid())?;
    Ok(key)
}
