//! 2-of-3 signing end to end (commit, sign, aggregate) through `ao-threshold`, against the same
//! steps made with raw `frost-secp256k1-tr` calls, in the same run; plus key generation and
//! verification times.
//!
//! Run with `cargo bench -p ao-threshold --bench signing`.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    missing_docs,
    reason = "benchmark code"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ao_threshold::{
    KeygenConfig, KeygenSession, generate_with_dealer, sign_message, verify_signature,
};
use criterion::Criterion;
use frost_secp256k1_tr as frost;
use rand::rngs::OsRng;

const MESSAGE: [u8; 32] = [7; 32];

fn raw_frost_setup() -> (
    BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
    frost::keys::PublicKeyPackage,
) {
    let (shares, public) =
        frost::keys::generate_with_dealer(3, 2, frost::keys::IdentifierList::Default, OsRng)
            .unwrap();
    let keys = shares
        .into_iter()
        .map(|(id, s)| (id, frost::keys::KeyPackage::try_from(s).unwrap()))
        .collect();
    (keys, public)
}

/// The raw library: the same three steps, signers 1 and 2.
fn raw_frost_sign(
    keys: &BTreeMap<frost::Identifier, frost::keys::KeyPackage>,
    public: &frost::keys::PublicKeyPackage,
) -> frost::Signature {
    let signers: Vec<_> = keys.iter().take(2).collect();
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for (id, key) in &signers {
        let (n, c) = frost::round1::commit(key.signing_share(), &mut OsRng);
        nonces.insert(**id, n);
        commitments.insert(**id, c);
    }
    let package = frost::SigningPackage::new(commitments, &MESSAGE);
    let mut partials = BTreeMap::new();
    for (id, key) in &signers {
        partials.insert(
            **id,
            frost::round2::sign(&package, &nonces[*id], key).unwrap(),
        );
    }
    frost::aggregate(&package, &partials, public).unwrap()
}

fn bench(c: &mut Criterion) {
    let (group, shares) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let (keys, public) = raw_frost_setup();
    let mut g = c.benchmark_group("sign_2_of_3");
    g.sample_size(50).measurement_time(Duration::from_secs(5));
    g.bench_function("ao_threshold", |b| {
        b.iter(|| sign_message(&group, &[&shares[0], &shares[1]], black_box(&MESSAGE)).unwrap())
    });
    g.bench_function("raw_frost", |b| {
        b.iter(|| raw_frost_sign(black_box(&keys), &public))
    });
    g.finish();
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn summary() {
    let (group, shares) = generate_with_dealer(KeygenConfig {
        threshold: 2,
        total: 3,
    })
    .unwrap();
    let (keys, public) = raw_frost_setup();
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let rounds = 300;
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..rounds {
        ours.push(time(&mut || {
            black_box(sign_message(&group, &[&shares[0], &shares[1]], &MESSAGE).unwrap());
        }));
        raw.push(time(&mut || {
            black_box(raw_frost_sign(&keys, &public));
        }));
    }
    let (ours, raw) = (median(ours), median(raw));
    let signature = sign_message(&group, &[&shares[0], &shares[1]], &MESSAGE).unwrap();
    let key: [u8; 32] = hex::decode(group.group_pubkey())
        .unwrap()
        .try_into()
        .unwrap();
    let verify = median(
        (0..1_000)
            .map(|_| {
                time(&mut || {
                    black_box(verify_signature(&key, &MESSAGE, &signature));
                })
            })
            .collect(),
    );
    let dealer = median(
        (0..50)
            .map(|_| {
                time(&mut || {
                    black_box(
                        generate_with_dealer(KeygenConfig {
                            threshold: 2,
                            total: 3,
                        })
                        .unwrap(),
                    );
                })
            })
            .collect(),
    );
    let dkg = median(
        (0..50)
            .map(|_| {
                time(&mut || {
                    black_box(
                        KeygenSession::new(KeygenConfig {
                            threshold: 2,
                            total: 3,
                        })
                        .complete()
                        .unwrap(),
                    );
                })
            })
            .collect(),
    );
    println!("\n== summary (medians measured in this run) ==");
    println!(
        "2-of-3 sign end to end: ao-threshold {ours:.2?}, raw frost {raw:.2?}, overhead {:+.1}%",
        (ours.as_secs_f64() / raw.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "keygen 2-of-3: trusted dealer {dealer:.2?}, distributed (all 3 participants) {dkg:.2?}"
    );
    println!("verify (libsecp256k1 BIP-340): {verify:.2?}");
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    summary();
}
