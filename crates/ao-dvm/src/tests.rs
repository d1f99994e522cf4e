use nostr::{EventBuilder, Keys, Kind, Tag};

use crate::nip90::{Feedback, JobRequest, JobResult, JobStatus, Nip90Error, check_temperature};
use crate::{InvoiceError, MemoryPaymentLedger, check_invoice, conformance};

fn job(keys: &Keys) -> nostr::Event {
    JobRequest {
        kind: 5050,
        prompt: "Say hi".into(),
        model: Some("m".into()),
        max_tokens: Some(64),
        temperature: Some("0.7".into()),
        bid_msats: Some(50_000),
        relays: vec!["ws://127.0.0.1:1".into()],
        service: None,
    }
    .to_event(keys)
    .unwrap()
}

fn signed(kind: u16, tags: &[&[&str]], keys: &Keys) -> nostr::Event {
    let tags = tags.iter().map(|t| Tag::parse(t.iter().copied()).unwrap());
    EventBuilder::new(Kind::from(kind), "out")
        .tags(tags)
        .sign_with_keys(keys)
        .unwrap()
}

#[test]
fn memory_ledger_conforms() {
    conformance::run_all(MemoryPaymentLedger::new);
}

#[test]
fn a_job_request_reads_back_as_written() {
    let keys = Keys::generate();
    let service = Keys::generate().public_key();
    let request = JobRequest {
        kind: 5050,
        prompt: "Write a haiku".into(),
        model: Some("llama".into()),
        max_tokens: Some(128),
        temperature: Some("1.5".into()),
        bid_msats: Some(21_000),
        relays: vec!["ws://a".into(), "ws://b".into()],
        service: Some(service),
    };
    let event = request.to_event(&keys).unwrap();
    assert_eq!(event.kind.as_u16(), 5050);
    assert_eq!(JobRequest::from_event(&event).unwrap(), request);
}

#[test]
fn feedback_for_another_job_or_kind_is_refused() {
    let customer = Keys::generate();
    let dvm = Keys::generate();
    let job = job(&customer);
    let other = self::job(&Keys::generate());
    let feedback = Feedback {
        provider: dvm.public_key(),
        status: JobStatus::PaymentRequired,
        extra: None,
        amount: None,
    }
    .to_event(&job, &dvm)
    .unwrap();
    assert_eq!(
        Feedback::from_event(&feedback, &job.id).unwrap().status,
        JobStatus::PaymentRequired
    );
    assert!(matches!(
        Feedback::from_event(&feedback, &other.id),
        Err(Nip90Error::OtherJob { .. })
    ));
    assert!(matches!(
        JobResult::from_event(&feedback, &job.id, 6050),
        Err(Nip90Error::WrongKind { found: 7000, .. })
    ));
}

#[test]
fn malformed_feedback_tags_are_errors_not_guesses() {
    let dvm = Keys::generate();
    let id = job(&Keys::generate()).id.to_hex();
    let job_id = nostr::EventId::from_hex(&id).unwrap();
    let cases: &[&[&[&str]]] = &[
        &[&["status", "payment-required"]],
        &[&["e", &id], &["status", "paid-maybe"]],
        &[&["e", &id], &["status", "processing"], &["status", "error"]],
        &[
            &["e", &id],
            &["status", "payment-required"],
            &["amount", "-5", "lnbc1"],
        ],
        &[
            &["e", &id],
            &["status", "payment-required"],
            &["amount", "+5"],
        ],
        &[
            &["e", &id],
            &["status", "payment-required"],
            &["amount", "5"],
            &["amount", "6"],
        ],
        &[&["e", &id], &["e", &id], &["status", "success"]],
        &[&["e", &id]],
    ];
    for tags in cases {
        let event = signed(7000, tags, &dvm);
        assert!(
            Feedback::from_event(&event, &job_id).is_err(),
            "accepted {tags:?}"
        );
    }
    let good = signed(
        7000,
        &[
            &["e", &id],
            &["status", "payment-required"],
            &["amount", "5", "lnbc"],
        ],
        &dvm,
    );
    let feedback = Feedback::from_event(&good, &job_id).unwrap();
    assert_eq!(
        feedback.amount.map(|a| (a.msats, a.bolt11)),
        Some((5, Some("lnbc".into())))
    );
}

#[test]
fn a_forged_event_is_refused() {
    let dvm = Keys::generate();
    let job = job(&Keys::generate());
    let mut result = JobResult {
        provider: dvm.public_key(),
        content: "hi".into(),
        amount: None,
        created: 0,
    }
    .to_event(&job, &dvm)
    .unwrap();
    assert!(JobResult::from_event(&result, &job.id, 6050).is_ok());
    result.content = "something else".into();
    assert!(matches!(
        JobResult::from_event(&result, &job.id, 6050),
        Err(Nip90Error::BadSignature { .. })
    ));
}

#[test]
fn temperatures_are_decimals_between_zero_and_two() {
    for good in ["0", "0.7", "1", "2", "2.0", "1.25"] {
        assert!(check_temperature(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "-1",
        "3",
        "2.5",
        "1e3",
        "0.7.1",
        ".5",
        "NaN",
        "1.0000001",
    ] {
        assert!(check_temperature(bad).is_err(), "{bad}");
    }
}

#[test]
fn invoices_are_checked_before_anything_is_paid() {
    let key = nostr::secp256k1::SecretKey::from_slice(&[7; 32]).unwrap();
    let bolt11 = crate::sim::invoice(&key, [1; 32], 21_000).unwrap();
    let ok = check_invoice(&bolt11, 21_000, 50_000).unwrap();
    assert_eq!(ok.amount_msats, 21_000);
    assert_eq!(ok.payment_hash.len(), 64);
    assert!(matches!(
        check_invoice(&bolt11, 20_000, 50_000),
        Err(InvoiceError::AmountMismatch {
            invoice_msats: 21_000,
            tag_msats: 20_000
        })
    ));
    assert!(matches!(
        check_invoice(&bolt11, 21_000, 20_999),
        Err(InvoiceError::OverBid { .. })
    ));
    assert!(matches!(
        check_invoice("lnbc-not-an-invoice", 21_000, 50_000),
        Err(InvoiceError::Undecodable { .. })
    ));
    let mut tampered = bolt11.clone();
    tampered.replace_range(20..21, if &bolt11[20..21] == "q" { "p" } else { "q" });
    assert!(
        check_invoice(&tampered, 21_000, 50_000).is_err(),
        "a tampered invoice decodes"
    );
}

mod never_panics {
    use nostr::{EventBuilder, Keys, Kind, Tag};
    use proptest::prelude::*;

    use crate::nip90::{Feedback, JobRequest, JobResult};

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("e".to_owned()),
            Just("p".to_owned()),
            Just("i".to_owned()),
            Just("status".to_owned()),
            Just("amount".to_owned()),
            Just("param".to_owned()),
            Just("bid".to_owned()),
            Just("payment-required".to_owned()),
            "[a-z0-9+. -]{0,8}",
            "[0-9]{1,25}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever tags a relay hands over, reading them is an answer or an error, never a
        /// panic, and nothing malformed reads as a payment request.
        #[test]
        fn reading_arbitrary_tags_never_panics(
            tags in proptest::collection::vec(proptest::collection::vec(word(), 1..4), 0..6),
            kind in prop_oneof![Just(5050u16), Just(6050u16), Just(7000u16), 0u16..10_000],
        ) {
            let keys = Keys::generate();
            let job = super::job(&keys);
            let mut tags: Vec<Tag> = tags.into_iter().filter_map(|t| Tag::parse(t).ok()).collect();
            tags.push(Tag::event(job.id));
            let event = EventBuilder::new(Kind::from(kind), "x")
                .tags(tags)
                .sign_with_keys(&keys)
                .unwrap();
            if let Ok(feedback) = Feedback::from_event(&event, &job.id) {
                prop_assert_eq!(kind, 7000);
                if let Some(amount) = feedback.amount {
                    prop_assert!(event.tags.iter().any(|t| t.as_slice().get(1) == Some(&amount.msats.to_string())));
                }
            }
            if JobResult::from_event(&event, &job.id, 6050).is_ok() {
                prop_assert_eq!(kind, 6050);
            }
            let _ = JobRequest::from_event(&event);
        }
    }
}
