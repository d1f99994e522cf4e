use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use frost_secp256k1_tr::keys::PublicKeyPackage;
use nostr::ToBech32;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ThresholdError;
use crate::group::GroupPublic;
use crate::share::SignerShare;

const SHARE_FORMAT: &str = "ao-share-v1";
const KDF_ALGORITHM: &str = "argon2id";
const CIPHER: &str = "chacha20poly1305";

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: the RFC 9106 second recommended option.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The most a file may demand, so that a forged file cannot exhaust memory or time.
    const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    const MAX_ITERATIONS: u32 = 64;
    const MAX_PARALLELISM: u32 = 16;

    fn argon2(&self) -> Result<Argon2<'static>, ThresholdError> {
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations > Self::MAX_ITERATIONS
            || self.parallelism > Self::MAX_PARALLELISM
        {
            return Err(ThresholdError::BadFile {
                what: "share file",
                reason: format!(
                    "key derivation parameters {self:?} are beyond the limits (1 GiB, 64 passes, 16 lanes)"
                ),
            });
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| ThresholdError::BadFile {
                what: "share file",
                reason: format!("key derivation parameters: {e}"),
            })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The key-derivation fields of a share file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfFields {
    /// Always `argon2id`.
    pub algorithm: String,
    /// The cost parameters.
    #[serde(flatten)]
    pub params: KdfParams,
    /// 16 random bytes, hex.
    pub salt: String,
}

/// A signer's share encrypted with a passphrase: the only form in which a share is written.
///
/// The key is derived with Argon2id from the passphrase and a random salt, and the share is
/// sealed with ChaCha20-Poly1305. Every clear field (index, threshold, group key, parameters) is
/// bound to the ciphertext as associated data, so none can be altered without the file failing
/// to open.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareFile {
    /// Always `ao-share-v1`.
    pub format: String,
    /// The signer's index.
    pub index: u16,
    /// Signatures the group requires.
    pub threshold: u16,
    /// The group key, hex.
    pub group_pubkey: String,
    /// How the key was derived.
    pub kdf: KdfFields,
    /// Always `chacha20poly1305`.
    pub cipher: String,
    /// 12 random bytes, hex.
    pub nonce: String,
    /// The sealed share, hex.
    pub ciphertext: String,
}

impl std::fmt::Debug for ShareFile {
    /// The clear fields only: the ciphertext is not secret, but it is noise in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareFile")
            .field("format", &self.format)
            .field("index", &self.index)
            .field("threshold", &self.threshold)
            .field("group_pubkey", &self.group_pubkey)
            .field("kdf", &self.kdf)
            .field("ciphertext_bytes", &(self.ciphertext.len() / 2))
            .finish_non_exhaustive()
    }
}

fn unhex<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], ThresholdError> {
    let bytes = hex::decode(text).map_err(|e| ThresholdError::BadFile {
        what: "share file",
        reason: format!("{field}: {e}"),
    })?;
    bytes.try_into().map_err(|_| ThresholdError::BadFile {
        what: "share file",
        reason: format!("{field} must be {N} bytes"),
    })
}

impl ShareFile {
    /// Encrypts `share` with `passphrase`.
    pub fn seal(
        share: &SignerShare,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Self, ThresholdError> {
        if passphrase.is_empty() {
            return Err(ThresholdError::EmptyPassphrase);
        }
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut file = ShareFile {
            format: SHARE_FORMAT.into(),
            index: share.index(),
            threshold: share.threshold(),
            group_pubkey: share.group_pubkey(),
            kdf: KdfFields {
                algorithm: KDF_ALGORITHM.into(),
                params,
                salt: hex::encode(salt),
            },
            cipher: CIPHER.into(),
            nonce: hex::encode(nonce),
            ciphertext: String::new(),
        };
        let key = file.derive_key(passphrase)?;
        let plaintext = share.secret_bytes()?;
        let sealed = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_slice(),
                    aad: file.associated_data().as_bytes(),
                },
            )
            .map_err(|_| ThresholdError::Encrypt)?;
        file.ciphertext = hex::encode(sealed);
        Ok(file)
    }

    /// Decrypts the share. A wrong passphrase and an altered file give the same error: the two
    /// cannot be told apart, by design.
    pub fn open(&self, passphrase: &str) -> Result<SignerShare, ThresholdError> {
        if self.format != SHARE_FORMAT
            || self.kdf.algorithm != KDF_ALGORITHM
            || self.cipher != CIPHER
        {
            return Err(ThresholdError::BadFile {
                what: "share file",
                reason: format!(
                    "format {}/{}/{} is not {SHARE_FORMAT}/{KDF_ALGORITHM}/{CIPHER}",
                    self.format, self.kdf.algorithm, self.cipher
                ),
            });
        }
        let nonce: [u8; 12] = unhex("nonce", &self.nonce)?;
        let sealed = hex::decode(&self.ciphertext).map_err(|e| ThresholdError::BadFile {
            what: "share file",
            reason: format!("ciphertext: {e}"),
        })?;
        let key = self.derive_key(passphrase)?;
        let plaintext = Zeroizing::new(
            ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: self.associated_data().as_bytes(),
                    },
                )
                .map_err(|_| ThresholdError::Decrypt)?,
        );
        let share = SignerShare::from_secret_bytes(self.index, &plaintext)?;
        if share.group_pubkey() != self.group_pubkey || share.threshold() != self.threshold {
            return Err(ThresholdError::Decrypt);
        }
        Ok(share)
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a share file. A truncated or foreign file is a clear error.
    pub fn from_json(text: &str) -> Result<Self, ThresholdError> {
        serde_json::from_str(text).map_err(|e| ThresholdError::BadFile {
            what: "share file",
            reason: e.to_string(),
        })
    }

    fn derive_key(&self, passphrase: &str) -> Result<Zeroizing<[u8; 32]>, ThresholdError> {
        if passphrase.is_empty() {
            return Err(ThresholdError::EmptyPassphrase);
        }
        let salt: [u8; 16] = unhex("salt", &self.kdf.salt)?;
        let mut key = Zeroizing::new([0u8; 32]);
        self.kdf
            .params
            .argon2()?
            .hash_password_into(passphrase.as_bytes(), &salt, key.as_mut())
            .map_err(|e| ThresholdError::BadFile {
                what: "share file",
                reason: format!("key derivation: {e}"),
            })?;
        Ok(key)
    }

    fn associated_data(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.format,
            self.index,
            self.threshold,
            self.group_pubkey,
            self.kdf.algorithm,
            self.kdf.params.memory_kib,
            self.kdf.params.iterations,
            self.kdf.params.parallelism,
            self.kdf.salt,
            self.cipher
        )
    }
}

/// The public description of a group (`group.json`): everything needed to build a
/// [`ThresholdConfig`](ao_identity::ThresholdConfig), to aggregate signatures and to verify them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    /// Signatures required.
    pub threshold: u16,
    /// Signers.
    pub total: u16,
    /// The group key, 64 hex characters.
    pub group_pubkey: String,
    /// The group key as an npub.
    pub npub: String,
    /// Each signer's public share, x-only hex, by index.
    pub signer_pubkeys: Vec<String>,
    /// FROST's public key package, hex.
    pub public_key_package: String,
}

impl GroupFile {
    /// The file describing `group`.
    pub fn from_group(group: &GroupPublic) -> Result<Self, ThresholdError> {
        // Encoding a public key as an npub cannot fail: its error type is `Infallible`.
        let Ok(npub) = group.public_key().to_bech32();
        Ok(Self {
            threshold: group.threshold(),
            total: group.total(),
            group_pubkey: group.group_pubkey(),
            npub,
            signer_pubkeys: group.signer_pubkeys(),
            public_key_package: hex::encode(
                group.package.serialize().map_err(ThresholdError::Frost)?,
            ),
        })
    }

    /// The group the file describes, after checking that every field agrees with the key
    /// package.
    pub fn to_group(&self) -> Result<GroupPublic, ThresholdError> {
        let bad = |reason: String| ThresholdError::BadFile {
            what: "group file",
            reason,
        };
        let bytes = hex::decode(&self.public_key_package)
            .map_err(|e| bad(format!("public_key_package: {e}")))?;
        let package = PublicKeyPackage::deserialize(&bytes)
            .map_err(|e| bad(format!("public_key_package: {e}")))?;
        let group = GroupPublic::new(self.threshold, self.total, package)?;
        if group
            .package
            .min_signers()
            .is_some_and(|min| min != self.threshold)
        {
            return Err(bad("threshold does not match the key package".into()));
        }
        if group.package.verifying_shares().len() != usize::from(self.total) {
            return Err(bad("total does not match the key package".into()));
        }
        if GroupFile::from_group(&group)? != *self {
            return Err(bad(
                "group_pubkey, npub or signer_pubkeys do not match the key package".into(),
            ));
        }
        Ok(group)
    }

    /// The file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a group file.
    pub fn from_json(text: &str) -> Result<Self, ThresholdError> {
        serde_json::from_str(text).map_err(|e| ThresholdError::BadFile {
            what: "group file",
            reason: e.to_string(),
        })
    }
}
