use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use frost_secp256k1_tr::keys::PublicKeyPackage;
use nostr::{Keys, PublicKey, SecretKey, ToBech32};
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
    /// The signer node's transport key, sealed under the same passphrase: the key its node
    /// speaks under on relays, separate from the share. Absent from files written before signer
    /// nodes, which still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<SealedTransport>,
}

/// A signer node's transport key (a Nostr key of its own, not derived from the share), sealed
/// inside its share file with the key derived from the share's passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedTransport {
    /// The transport key's x-only public key, hex: the one the group file lists.
    pub pubkey: String,
    /// 12 random bytes, hex.
    pub nonce: String,
    /// The sealed secret key, hex.
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
            .field(
                "transport_pubkey",
                &self.transport.as_ref().map(|t| t.pubkey.as_str()),
            )
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

/// Seals `plaintext` under `key` with a fresh random nonce: (nonce, ciphertext), hex.
fn seal_bytes(
    key: &[u8; 32],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<(String, String), ThresholdError> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| ThresholdError::Encrypt)?;
    Ok((hex::encode(nonce), hex::encode(sealed)))
}

/// Opens what [`seal_bytes`] sealed.
fn open_bytes(
    key: &[u8; 32],
    nonce: &str,
    ciphertext: &str,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ThresholdError> {
    let nonce: [u8; 12] = unhex("nonce", nonce)?;
    let sealed = hex::decode(ciphertext).map_err(|e| ThresholdError::BadFile {
        what: "share file",
        reason: format!("ciphertext: {e}"),
    })?;
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &sealed, aad })
        .map(Zeroizing::new)
        .map_err(|_| ThresholdError::Decrypt)
}

impl ShareFile {
    /// Encrypts `share` with `passphrase`.
    pub fn seal(
        share: &SignerShare,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Self, ThresholdError> {
        Self::seal_inner(share, None, passphrase, params)
    }

    /// Encrypts `share` and its node's `transport` key with `passphrase`: the file a signer
    /// node runs from.
    pub fn seal_with_transport(
        share: &SignerShare,
        transport: &Keys,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Self, ThresholdError> {
        Self::seal_inner(share, Some(transport), passphrase, params)
    }

    fn seal_inner(
        share: &SignerShare,
        transport: Option<&Keys>,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Self, ThresholdError> {
        if passphrase.is_empty() {
            return Err(ThresholdError::EmptyPassphrase);
        }
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
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
            nonce: String::new(),
            ciphertext: String::new(),
            transport: None,
        };
        let key = file.derive_key(passphrase)?;
        let plaintext = share.secret_bytes()?;
        let (nonce, sealed) = seal_bytes(&key, &plaintext, file.associated_data().as_bytes())?;
        file.nonce = nonce;
        file.ciphertext = sealed;
        if let Some(transport) = transport {
            let pubkey = transport.public_key().to_hex();
            let secret = Zeroizing::new(transport.secret_key().to_secret_bytes());
            let aad = file.transport_associated_data(&pubkey);
            let (nonce, ciphertext) = seal_bytes(&key, secret.as_slice(), aad.as_bytes())?;
            file.transport = Some(SealedTransport {
                pubkey,
                nonce,
                ciphertext,
            });
        }
        Ok(file)
    }

    /// Decrypts the share. A wrong passphrase and an altered file give the same error: the two
    /// cannot be told apart, by design.
    pub fn open(&self, passphrase: &str) -> Result<SignerShare, ThresholdError> {
        self.open_with_transport(passphrase).map(|(share, _)| share)
    }

    /// Decrypts the share and, when the file holds one, its node's transport key.
    pub fn open_with_transport(
        &self,
        passphrase: &str,
    ) -> Result<(SignerShare, Option<Keys>), ThresholdError> {
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
        let key = self.derive_key(passphrase)?;
        let plaintext = open_bytes(
            &key,
            &self.nonce,
            &self.ciphertext,
            self.associated_data().as_bytes(),
        )?;
        let share = SignerShare::from_secret_bytes(self.index, &plaintext)?;
        if share.group_pubkey() != self.group_pubkey || share.threshold() != self.threshold {
            return Err(ThresholdError::Decrypt);
        }
        let transport = match &self.transport {
            None => None,
            Some(sealed) => {
                let aad = self.transport_associated_data(&sealed.pubkey);
                let secret = open_bytes(&key, &sealed.nonce, &sealed.ciphertext, aad.as_bytes())?;
                let keys = SecretKey::from_slice(&secret)
                    .map(Keys::new)
                    .map_err(|_| ThresholdError::Decrypt)?;
                if keys.public_key().to_hex() != sealed.pubkey {
                    return Err(ThresholdError::Decrypt);
                }
                Some(keys)
            }
        };
        Ok((share, transport))
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

    fn transport_associated_data(&self, pubkey: &str) -> String {
        format!("{}\ntransport\n{pubkey}", self.associated_data())
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
    /// Each signer node's transport key (x-only hex), by index: the key the node speaks under
    /// on relays, separate from its share. Empty in group files written before signer nodes,
    /// which still load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transport_pubkeys: Vec<String>,
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
            transport_pubkeys: Vec::new(),
        })
    }

    /// The file with each signer node's transport key, by index.
    pub fn with_transport_keys(mut self, keys: &[PublicKey]) -> Self {
        self.transport_pubkeys = keys.iter().map(PublicKey::to_hex).collect();
        self
    }

    /// Each signer node's transport key, by index (signer `i` at `i - 1`), or `None` when the
    /// file lists none. When it lists them, there is one per signer, each a distinct key.
    pub fn transport_keys(&self) -> Result<Option<Vec<PublicKey>>, ThresholdError> {
        if self.transport_pubkeys.is_empty() {
            return Ok(None);
        }
        let bad = |reason: String| ThresholdError::BadFile {
            what: "group file",
            reason,
        };
        if self.transport_pubkeys.len() != usize::from(self.total) {
            return Err(bad(format!(
                "{} transport_pubkeys for {} signers",
                self.transport_pubkeys.len(),
                self.total
            )));
        }
        let mut keys: Vec<PublicKey> = Vec::with_capacity(self.transport_pubkeys.len());
        for (i, text) in (1u16..).zip(&self.transport_pubkeys) {
            let key = PublicKey::from_hex(text)
                .map_err(|e| bad(format!("transport key of signer {i}: {e}")))?;
            if keys.contains(&key) {
                return Err(bad(format!(
                    "signer {i} has the transport key of another signer"
                )));
            }
            keys.push(key);
        }
        Ok(Some(keys))
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
        self.transport_keys()?;
        let mut expected = GroupFile::from_group(&group)?;
        expected
            .transport_pubkeys
            .clone_from(&self.transport_pubkeys);
        if expected != *self {
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
