use std::time::{Duration, Instant};

use ao_budget::CostRecord;
use ao_types::BackendProvider;
use axum::http::{HeaderMap, HeaderValue, header};

use super::data::{Range, bucket};
use super::session::{MAX_SESSIONS, SESSION_LIFETIME, Sessions, cookie, same_secret, set_cookie};
use super::{CONTENT_SECURITY_POLICY, assets};

fn record(agent: &str, timestamp: u64, cost_sats: u64) -> CostRecord {
    CostRecord {
        agent_name: agent.to_owned(),
        backend: BackendProvider::Codex,
        input_tokens: 1,
        output_tokens: 1,
        cost_sats,
        timestamp,
    }
}

#[test]
fn spend_is_bucketed_by_hour_and_by_utc_day_with_the_current_one_last() {
    // 2026-03-10 13:25:00 UTC.
    let now = 1_773_149_100;
    let (from, width, count) = Range::Day.buckets(now);
    assert_eq!((width, count), (3_600, 24));
    assert_eq!(
        from,
        1_773_147_600 - 23 * 3_600,
        "the current hour is the last bucket"
    );
    let (from7, width7, count7) = Range::Week.buckets(now);
    assert_eq!((width7, count7), (86_400, 7));
    assert_eq!(
        from7,
        1_773_100_800 - 6 * 86_400,
        "today is the last bucket"
    );

    let records = [
        record("a", from - 1, 1_000),
        record("a", from, 1),
        record("a", from + 3_599, 2),
        record("b", now, 5),
        record("a", now, 7),
        record("a", from + 24 * 3_600, 1_000),
        record("ghost", from + 3_600, 3),
    ];
    let rows = bucket(&records, &["a", "b", "idle"], (from, width, count));
    assert_eq!(
        rows["a"][0], 3,
        "both ends of the first hour, nothing before it"
    );
    assert_eq!(rows["a"][23], 7);
    assert_eq!(rows["a"].iter().sum::<u64>(), 10, "nothing past the window");
    assert_eq!(rows["b"][23], 5);
    assert_eq!(
        rows["idle"],
        vec![0; 24],
        "an agent that spent nothing has a row of zeros"
    );
    assert_eq!(
        rows["ghost"][1], 3,
        "spend of an agent no longer configured still shows"
    );
}

#[test]
fn bucketing_saturates_instead_of_wrapping() {
    let records = [record("a", 10, u64::MAX), record("a", 11, 5)];
    assert_eq!(bucket(&records, &[], (0, 60, 1))["a"], vec![u64::MAX]);
}

#[test]
fn a_session_lasts_its_lifetime_and_no_longer() {
    let sessions = Sessions::default();
    let start = Instant::now();
    let (id, csrf) = sessions.open(start).unwrap();
    assert_eq!((id.len(), csrf.len()), (64, 64));
    assert_ne!(id, csrf);
    let seen = sessions.check(&id, start).unwrap().unwrap();
    assert_eq!(seen.csrf, csrf);
    assert!(sessions.is_open(&id, start + SESSION_LIFETIME - Duration::from_secs(1)));
    assert!(!sessions.is_open(&id, start + SESSION_LIFETIME));
    assert!(!sessions.is_open("", start));
    assert!(
        !sessions.is_open(&csrf, start),
        "the CSRF token is not a session id"
    );
}

#[test]
fn closing_a_session_and_opening_too_many_both_sign_out() {
    let sessions = Sessions::default();
    let start = Instant::now();
    let (first, _) = sessions.open(start).unwrap();
    let (second, _) = sessions.open(start + Duration::from_secs(1)).unwrap();
    sessions.close(&second).unwrap();
    assert!(!sessions.is_open(&second, start));
    for i in 0..MAX_SESSIONS {
        sessions
            .open(start + Duration::from_secs(2 + i as u64))
            .unwrap();
    }
    assert!(
        !sessions.is_open(&first, start + Duration::from_secs(2)),
        "the oldest session makes room"
    );
}

#[test]
fn secrets_compare_whole() {
    assert!(same_secret("abc", "abc"));
    assert!(!same_secret("abc", "abd"));
    assert!(!same_secret("abc", "ab"));
    assert!(!same_secret("", "a"));
}

#[test]
fn the_session_cookie_is_found_among_others_and_is_http_only_and_strict() {
    let mut headers = HeaderMap::new();
    headers.append(
        header::COOKIE,
        HeaderValue::from_static("a=1; ao_console_x=2"),
    );
    headers.append(
        header::COOKIE,
        HeaderValue::from_static("b=3;ao_console=abc"),
    );
    assert_eq!(cookie(&headers, "ao_console"), Some("abc"));
    assert_eq!(cookie(&headers, "missing"), None);
    let set = set_cookie("abc", SESSION_LIFETIME, false);
    assert_eq!(
        set,
        "ao_console=abc; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=28800"
    );
    assert!(set_cookie("abc", SESSION_LIFETIME, true).ends_with("; Secure"));
}

#[test]
fn the_page_and_its_scripts_hold_nothing_the_csp_would_refuse_or_that_parses_html() {
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "require-trusted-types-for 'script'",
        "frame-ancestors 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    let index = assets::body("index.html").unwrap();
    assert!(!index.contains("style="), "no inline style attribute");
    assert!(!index.contains("<style"), "no style element");
    let handlers = index.split(" on").skip(1).filter(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert_eq!(handlers.count(), 0, "no inline event handler");
    // Every script is an external module.
    assert_eq!(index.matches("<script").count(), 1);
    assert!(index.contains(r#"<script type="module" src="/ui/assets/app.js"></script>"#));
    for name in assets::names().filter(|n| n.ends_with(".js")) {
        let body = assets::body(name).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!body.contains(sink), "{name} uses {sink}");
        }
        assert!(body.lines().count() < 600, "{name} is too long");
    }
    assert!(
        assets::names().all(|n| index.contains(n) || n.ends_with(".js")),
        "every non-script asset is linked from the page"
    );
}
