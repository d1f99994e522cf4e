//! Several gateways on one PostgreSQL database: what this one hears from the others. A request
//! filed or decided through any gateway (or the CLI) is announced on `ao_approvals`; the
//! coordinator of its agent here takes it up, so a call waiting on it wakes on whichever gateway
//! it waits, and every gateway lists every open request.

use std::collections::HashMap;
use std::sync::Arc;

use ao_approvals::SolverAgentCoordinator;
use ao_store::pg::{APPROVALS_CHANNEL, ApprovalNotice, Listener, Notice, PgStore};
use ao_types::Report;

/// Follows the approvals announced on `store`'s database for `agents`, until the listener is
/// dropped. The work runs on a thread of its own: taking a request up reads the store.
pub(crate) fn follow_approvals(
    store: &PgStore,
    agents: &HashMap<String, Arc<SolverAgentCoordinator>>,
) -> Option<Listener> {
    let (notices, incoming) = std::sync::mpsc::channel::<Notice>();
    let agents = agents.clone();
    let spawned = std::thread::Builder::new()
        .name("ao-approvals-listen".into())
        .spawn(move || {
            // Ends when the listener (and its sender) goes.
            for notice in incoming {
                take_up(&agents, notice);
            }
        });
    if let Err(error) = spawned {
        tracing::error!(error = %Report::new(&error), "cannot follow other gateways' approvals");
        return None;
    }
    Some(store.listen(APPROVALS_CHANNEL, move |notice| {
        let _ = notices.send(notice);
    }))
}

fn take_up(agents: &HashMap<String, Arc<SolverAgentCoordinator>>, notice: Notice) {
    let report = |error: &ao_approvals::ApprovalError| {
        tracing::warn!(error = %Report::new(error), "cannot take up another gateway's approval");
    };
    match notice {
        Notice::Payload(payload) => {
            let Ok(notice) = serde_json::from_str::<ApprovalNotice>(&payload) else {
                tracing::warn!(payload, "an approval announcement that does not parse");
                return;
            };
            if let Some(coordinator) = agents.get(&notice.agent)
                && let Err(error) = coordinator.take_up(&notice.id)
            {
                report(&error);
            }
        }
        Notice::Resync => {
            for coordinator in agents.values() {
                if let Err(error) = coordinator.take_up_all() {
                    report(&error);
                }
            }
        }
    }
}
