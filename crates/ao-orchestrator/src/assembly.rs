//! Assembly: an [`Orchestrator`] built from a [`Config`], one builder per part. The database
//! first (the ledger and the approvals live in it), then budgets, backends, agents, and the
//! reservation lease that covers the slowest call.

use std::sync::Arc;
use std::time::Duration;

use ao_approvals::SolverAgentCoordinator;
use ao_budget::{CostTracker, Limits, RateLimiter};
use ao_dvm::{DvmBackend, DvmConfig, NWC_URI_ENV, NwcWallet, PaymentLedger, Wallet, WalletError};
use ao_identity::AgentIdentity;
use ao_routing::http::{Backend, BackendPool, ClientOptions, OpenAiBackend};
use ao_routing::{BackendConfig, BackendProvider, MultiBackendRouter};
use ao_signer::EventSigner;
use ao_store::pg::SharedBudgets;
use ao_store::{PgOptions, PgStore, SqliteStore, Store};
use ao_types::SharedClock;

use crate::admission::RequestRules;
use crate::config::{AgentEntry, BackendEntry, Config};
use crate::error::SetupError;
use crate::orchestrator::{Orchestrator, OrchestratorParts, Payments};
use crate::signing::AgentSigning;

impl Orchestrator {
    /// An orchestrator as `config` describes it: the database (the SQLite file under the data
    /// directory, created if missing; or PostgreSQL, whose budgets every gateway on it shares),
    /// the ledger and approvals in it, one HTTP client per enabled backend (a backend whose API
    /// key variable is unset is an error now, not at the first call).
    ///
    /// On PostgreSQL the budgets of completions are the database's ([`SharedBudgets`]); the
    /// tracker keeps only what [`run_tool`](Orchestrator::run_tool)'s hooks charge, in this
    /// process.
    pub fn from_config(config: &Config) -> Result<(Self, Store), SetupError> {
        Self::from_config_with_wallet(config, None)
    }

    /// [`from_config`](Orchestrator::from_config), with `wallet` paying for `dvm` backends (and
    /// [`pay_invoice`](Orchestrator::pay_invoice)) instead of the NWC wallet named by the
    /// environment (`wallet_uri_env`, default `AO_NWC_URI`): for `ao serve --simulated`, or a
    /// wallet of the caller's own.
    pub fn from_config_with_wallet(
        config: &Config,
        wallet: Option<Arc<dyn Wallet>>,
    ) -> Result<(Self, Store), SetupError> {
        let store = open_store(config)?;
        let payments = payments(config, &store, wallet)?;
        let (router, pool) = backends(config, payments.as_ref())?;
        let router = routes(router, config);
        let coordinators = config
            .agents
            .iter()
            .map(|(name, agent)| coordinator(name, agent, &router, config, &store))
            .collect::<Result<Vec<_>, _>>()?;
        let tracker = budgets(config).with_reservation_lease(reservation_lease(config));
        let (tracker, shared_budgets) = match &store {
            Store::Sqlite(sqlite) => (
                tracker
                    .with_ledger(sqlite.clone())
                    .map_err(|source| SetupError::Ledger { source })?,
                None,
            ),
            // The holds in PostgreSQL are every gateway's: the tracker must not recover them.
            Store::Postgres(pg) => {
                let lease = Duration::from_secs(config.database_settings().lease_secs);
                (
                    tracker,
                    Some(SharedBudgets::new(pg.clone(), limits(config), lease)),
                )
            }
        };
        let clock = Arc::clone(tracker.clock());
        let signing = signing(config, &coordinators, &clock)?;
        let orchestrator = Self::new(OrchestratorParts {
            router: Arc::new(router),
            pool: Arc::new(pool),
            tracker: Arc::new(tracker),
            agents: coordinators,
            audit: Arc::new(store.clone()),
            approval_wait: Duration::from_secs(config.approvals.wait_secs),
            requests: request_rules(config),
            rates: rate_limits(config),
            shared_budgets,
            clock,
            hooks: None,
            payments,
            signing,
        });
        Ok((orchestrator, store))
    }
}

/// What signs the agent's events through the signer nodes of `[signing]`: the group file and the
/// coordinator's key are read now (a file that cannot be used stops the start), the relays are
/// connected to when something is first signed (a node or relay that is down does not). The
/// agent is the one whose `pubkey` is the group key.
fn signing(
    config: &Config,
    agents: &[Arc<SolverAgentCoordinator>],
    clock: &SharedClock,
) -> Result<Option<Arc<AgentSigning>>, SetupError> {
    let Some(section) = config.signing() else {
        return Ok(None);
    };
    let signer = section.open().map_err(|source| SetupError::Signing {
        source: Box::new(source),
    })?;
    let group = signer.group().clone();
    let group_key = group.public_key();
    let mut theirs = agents.iter().filter(|agent| {
        ao_identity::parse_public_key(&agent.identity().agent_pubkey).ok() == Some(group_key)
    });
    let agent = match (theirs.next(), theirs.next()) {
        (Some(agent), None) => agent,
        (first, second) => {
            let found = match (first, second) {
                (Some(a), Some(b)) => format!(
                    "agents `{}` and `{}` both have the group key",
                    a.identity().name,
                    b.identity().name
                ),
                _ => "no agent has the group key as its `pubkey`".to_owned(),
            };
            return Err(SetupError::SigningAgent {
                found,
                group_key: group.group_pubkey(),
            });
        }
    };
    let identity = agent.identity().clone();
    let name = identity.name.clone();
    let signer: Arc<dyn EventSigner> = Arc::new(signer);
    AgentSigning::new(signer, group, identity, Arc::clone(clock))
        .map(|signing| Some(Arc::new(signing)))
        .map_err(|source| SetupError::SigningIdentity {
            agent: name,
            source: Box::new(source),
        })
}

/// The database `config` names: PostgreSQL when it gives a URL, else the SQLite file (its
/// directory created if missing).
fn open_store(config: &Config) -> Result<Store, SetupError> {
    if let Some(url) = config.database_url() {
        let settings = config.database_settings();
        let options = PgOptions {
            max_connections: settings.max_connections,
            ..PgOptions::default()
        };
        return PgStore::connect(&url, options)
            .map(Store::from)
            .map_err(|source| SetupError::Database {
                source: source.into(),
            });
    }
    let path = config.database_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| SetupError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    SqliteStore::open(&path)
        .map(Store::from)
        .map_err(|source| SetupError::Database { source })
}

/// The budgets and token caps, as the shared budgets read them.
fn limits(config: &Config) -> Limits {
    let mut limits = Limits::default();
    if let Some(budget) = &config.default_budget {
        limits.default_budget = budget.budget();
        limits.default_token_cap = budget.daily_token_cap;
    }
    for (name, agent) in &config.agents {
        if let Some(budget) = &agent.budget {
            limits.budgets.insert(name.clone(), budget.budget());
            if let Some(cap) = budget.daily_token_cap {
                limits.token_caps.insert(name.clone(), cap);
            }
        }
    }
    limits
}

/// The default budget and each agent's own, with their daily token caps.
fn budgets(config: &Config) -> CostTracker {
    let mut tracker = CostTracker::new();
    if let Some(budget) = &config.default_budget {
        tracker = tracker.with_default_budget(budget.budget());
        if let Some(cap) = budget.daily_token_cap {
            tracker = tracker.with_default_daily_token_cap(cap);
        }
    }
    for (name, agent) in &config.agents {
        if let Some(budget) = &agent.budget {
            tracker = tracker.with_budget(name.clone(), budget.budget());
            if let Some(cap) = budget.daily_token_cap {
                tracker = tracker.with_daily_token_cap(name.clone(), cap);
            }
        }
    }
    tracker
}

/// The wallet and the ledger of payments, when a `dvm` backend is configured (or a wallet is
/// given): the NWC wallet of the environment variable the first `dvm` backend names, and the
/// database, SQLite or PostgreSQL, where each payment is written down before it is made.
fn payments(
    config: &Config,
    store: &Store,
    wallet: Option<Arc<dyn Wallet>>,
) -> Result<Option<Payments>, SetupError> {
    let dvm = config
        .backends
        .iter()
        .find(|b| *b.provider.get_ref() == BackendProvider::Dvm && b.enabled);
    let wallet = match (wallet, dvm) {
        (Some(wallet), _) => wallet,
        (None, Some(entry)) => {
            let variable = entry.wallet_uri_env.as_deref().unwrap_or(NWC_URI_ENV);
            let timeout = Duration::from_secs(entry.timeout_secs.unwrap_or(60).min(60));
            Arc::new(
                NwcWallet::from_env(variable, timeout)
                    .map_err(|source| SetupError::Wallet { source })?,
            )
        }
        (None, None) => return Ok(None),
    };
    let ledger: Arc<dyn PaymentLedger> = match store {
        Store::Sqlite(sqlite) => Arc::new(sqlite.clone()),
        Store::Postgres(pg) => Arc::new(pg.clone()),
    };
    Ok(Some(Payments { wallet, ledger }))
}

/// The client of a `dvm` backend: its relays, service provider, job kind and bid.
fn dvm_backend(
    entry: &BackendEntry,
    backend: BackendConfig,
    payments: Option<&Payments>,
) -> Result<Arc<dyn Backend>, SetupError> {
    // Built whenever a `dvm` backend is enabled; without it, no wallet was found.
    let payments = payments.ok_or_else(|| SetupError::Wallet {
        source: WalletError::MissingUri {
            variable: NWC_URI_ENV.to_owned(),
        },
    })?;
    let service = entry
        .service_pubkey
        .as_ref()
        .and_then(|k| ao_identity::parse_public_key(k.get_ref()).ok());
    let dvm = DvmConfig {
        relays: entry.relays.iter().map(|r| r.get_ref().clone()).collect(),
        service,
        job_kind: entry
            .job_kind
            .as_ref()
            .map_or(ao_dvm::nip90::KIND_TEXT_GENERATION, |k| *k.get_ref()),
        max_bid_sats: entry.max_bid_sats.as_ref().map_or(1, |b| *b.get_ref()),
        timeout: options(entry).timeout,
    };
    Ok(Arc::new(DvmBackend::new(
        backend,
        dvm,
        Arc::clone(&payments.wallet),
        Arc::clone(&payments.ledger),
    )))
}

/// The router's backends and prices, and a live client for each enabled one.
fn backends(
    config: &Config,
    payments: Option<&Payments>,
) -> Result<(MultiBackendRouter, BackendPool), SetupError> {
    let mut router = MultiBackendRouter::new(*config.default_backend.get_ref());
    let mut pool = BackendPool::new();
    for entry in &config.backends {
        let mut backend = BackendConfig::new(
            *entry.provider.get_ref(),
            entry.model.clone(),
            entry.cost_per_1k_input,
            entry.cost_per_1k_output,
        )
        .with_enabled(entry.enabled);
        backend.endpoint = entry.endpoint.as_ref().map(|e| e.get_ref().clone());
        if entry.enabled && backend.provider == BackendProvider::Dvm {
            pool = pool.with_backend(dvm_backend(entry, backend.clone(), payments)?);
        } else if entry.enabled {
            let client = OpenAiBackend::new(
                backend.clone(),
                entry.api_key_env.as_deref(),
                options(entry),
            )
            .map_err(|source| SetupError::Backend {
                provider: backend.provider,
                source,
            })?;
            pool = pool.with_backend(Arc::new(client));
        }
        router = router.add_backend(backend);
    }
    Ok((router, pool))
}

/// The default rate limits and each agent's own.
fn rate_limits(config: &Config) -> RateLimiter {
    let mut rates = RateLimiter::new().with_default(config.default_rate_limits.unwrap_or_default());
    for (name, agent) in &config.agents {
        if let Some(limits) = agent.rate_limits {
            rates = rates.with_limits(name.clone(), limits);
        }
    }
    rates
}

/// How requests are estimated: the configured limits and each backend's image price.
fn request_rules(config: &Config) -> RequestRules {
    RequestRules {
        default_max_tokens: config.requests.default_max_tokens,
        max_choices: config.requests.max_choices,
        image_tokens: config
            .backends
            .iter()
            .filter_map(|b| b.image_tokens.map(|t| (*b.provider.get_ref(), t)))
            .collect(),
    }
}

/// How a backend's client waits and retries.
fn options(entry: &BackendEntry) -> ClientOptions {
    let defaults = ClientOptions::default();
    ClientOptions {
        timeout: entry
            .timeout_secs
            .map_or(defaults.timeout, Duration::from_secs),
        max_retries: entry.max_retries.unwrap_or(defaults.max_retries),
        ..defaults
    }
}

/// Each agent's route.
fn routes(mut router: MultiBackendRouter, config: &Config) -> MultiBackendRouter {
    for (name, agent) in &config.agents {
        if let Some(backend) = &agent.backend {
            router = router.route_agent(name.clone(), *backend.get_ref());
        }
    }
    router
}

/// The approval coordinator of agent `name`, holding its identity, its approval policy and the
/// store its requests live in.
fn coordinator(
    name: &str,
    agent: &AgentEntry,
    router: &MultiBackendRouter,
    config: &Config,
    store: &Store,
) -> Result<Arc<SolverAgentCoordinator>, SetupError> {
    let model = agent.model.clone().unwrap_or_else(|| {
        router
            .get_backend(name)
            .map(|b| b.model.clone())
            .unwrap_or_default()
    });
    let pubkey = agent
        .pubkey
        .as_ref()
        .map(|k| k.get_ref().clone())
        .unwrap_or_default();
    let mut identity = AgentIdentity::new(pubkey, name, model).with_autonomy(agent.autonomy);
    if let Some(operator) = &agent.operator {
        identity = identity.with_operator(operator.get_ref().clone());
    }
    let mut coordinator = SolverAgentCoordinator::new(identity)
        .with_expiry(Duration::from_secs(config.approvals.expiry_secs))
        .with_max_pending(config.approvals.max_pending)
        .with_approval_usable_for(Duration::from_secs(config.approvals.usable_for_secs));
    if let Some(sats) = agent.approval_above_sats {
        coordinator = coordinator.with_approval_above_sats(sats);
    }
    if !agent.guardians.is_empty() {
        let required = agent
            .guardians_required
            .unwrap_or(u32::try_from(agent.guardians.len()).unwrap_or(u32::MAX));
        coordinator = coordinator
            .with_guardians(
                agent.guardians.iter().map(|g| g.get_ref().clone()),
                required,
            )
            .map_err(|source| SetupError::Guardians {
                agent: name.to_owned(),
                source,
            })?;
    }
    let coordinator =
        coordinator
            .with_store(store.clone())
            .map_err(|source| SetupError::Approvals {
                agent: name.to_owned(),
                source,
            })?;
    Ok(Arc::new(coordinator))
}

/// How long a reservation lasts: it must outlive the slowest call it covers, an approval wait,
/// then every try at every backend of a chain, with backoff. Long streams renew their lease.
fn reservation_lease(config: &Config) -> Duration {
    let defaults = ClientOptions::default();
    let slowest_call: Duration = config
        .backends
        .iter()
        .filter(|b| b.enabled)
        .map(|b| {
            let timeout = b.timeout_secs.map_or(defaults.timeout, Duration::from_secs);
            let retries = b.max_retries.unwrap_or(defaults.max_retries);
            timeout.saturating_mul(retries.saturating_add(1))
                + defaults.max_backoff.saturating_mul(retries)
        })
        .sum();
    (Duration::from_secs(config.approvals.wait_secs) + slowest_call + Duration::from_secs(60))
        .max(ao_budget::DEFAULT_LEASE)
}
