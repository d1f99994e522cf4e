use crate::{ao, stderr, stdout};

#[test]
fn the_demo_runs_the_spec_end_to_end() {
    let out = ao(&["demo"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "the agent's npub is npub1",
        "verifies with nostr's own check",
        "threshold-protected: true",
        "SIMULATED: ao-sim on loopback",
        "the agent tries to approve itself: refused",
        "the request is approved",
        "retried with the approval: answered",
        "3 admitted, 7 refused before reaching the backend",
        "0 outstanding",
        "every link verified",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}
