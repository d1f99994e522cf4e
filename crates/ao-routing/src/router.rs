use std::collections::HashMap;

use ao_types::BackendProvider;

use crate::backend::BackendConfig;

/// Routes agents to AI backends.
///
/// The router holds at most one [`BackendConfig`] per [`BackendProvider`] (adding a second one for
/// the same provider replaces the first, keeping its place in the order), a map from agent names to
/// providers, and a default provider for every agent that is not mapped.
///
/// ```
/// use ao_routing::{BackendConfig, BackendProvider, MultiBackendRouter};
///
/// let router = MultiBackendRouter::new(BackendProvider::Codex)
///     .add_backend(BackendConfig::codex("sonnet-4"))
///     .add_backend(BackendConfig::openai("gpt-4"))
///     .route_agent("oracle", BackendProvider::OpenAI);
/// assert_eq!(router.get_backend("oracle").unwrap().model, "gpt-4");
/// assert_eq!(router.get_backend("anyone").unwrap().model, "sonnet-4");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiBackendRouter {
    default: BackendProvider,
    backends: Vec<BackendConfig>,
    routes: HashMap<String, BackendProvider>,
}

/// No backend can serve an agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// Neither the agent's routed backend nor the default backend exists and is enabled.
    #[error(
        "agent `{agent}` has no enabled backend and no default is enabled; add or enable a `{routed}` backend or the default `{default}` one"
    )]
    NoEnabledBackend {
        /// The agent that asked.
        agent: String,
        /// The provider the agent is routed to (the default when it has no route).
        routed: BackendProvider,
        /// The router's default provider.
        default: BackendProvider,
    },
}

impl MultiBackendRouter {
    /// A router with no backends whose unmapped agents go to `default`.
    pub fn new(default: BackendProvider) -> Self {
        Self {
            default,
            backends: Vec::new(),
            routes: HashMap::new(),
        }
    }

    /// Adds a backend. A backend of the same provider that was added before is replaced in place.
    pub fn add_backend(mut self, backend: BackendConfig) -> Self {
        match self
            .backends
            .iter_mut()
            .find(|b| b.provider == backend.provider)
        {
            Some(existing) => *existing = backend,
            None => self.backends.push(backend),
        }
        self
    }

    /// Routes `agent` to `provider`. A later route for the same agent replaces the earlier one.
    pub fn route_agent(mut self, agent: impl Into<String>, provider: BackendProvider) -> Self {
        self.routes.insert(agent.into(), provider);
        self
    }

    /// The backend that serves `agent`: its routed backend if that exists and is enabled, else the
    /// default provider's if that exists and is enabled, else `None`.
    pub fn get_backend(&self, agent: &str) -> Option<&BackendConfig> {
        self.enabled(self.routed_provider(agent))
            .or_else(|| self.enabled(self.default))
    }

    /// Like [`get_backend`](MultiBackendRouter::get_backend), with an error that says what to fix.
    pub fn route(&self, agent: &str) -> Result<&BackendConfig, RoutingError> {
        self.get_backend(agent)
            .ok_or_else(|| RoutingError::NoEnabledBackend {
                agent: agent.to_owned(),
                routed: self.routed_provider(agent),
                default: self.default,
            })
    }

    /// The enabled backends, in the order they were added.
    pub fn list_enabled(&self) -> Vec<&BackendConfig> {
        self.backends.iter().filter(|b| b.enabled).collect()
    }

    /// The enabled backends to try for `agent`, in order: its routed backend, then the default
    /// provider's, then every other enabled backend in the order they were added. Each appears
    /// once; disabled backends never appear. The first entry is
    /// [`get_backend`](MultiBackendRouter::get_backend)'s answer.
    pub fn fallback_chain(&self, agent: &str) -> Vec<&BackendConfig> {
        let mut chain: Vec<&BackendConfig> = Vec::with_capacity(self.backends.len());
        let preferred = [self.routed_provider(agent), self.default];
        for provider in preferred {
            if let Some(backend) = self.enabled(provider)
                && !chain.iter().any(|b| b.provider == provider)
            {
                chain.push(backend);
            }
        }
        for backend in self.backends.iter().filter(|b| b.enabled) {
            if !chain.iter().any(|b| b.provider == backend.provider) {
                chain.push(backend);
            }
        }
        chain
    }

    /// The provider `agent` is routed to: its own route, or the default.
    pub fn routed_provider(&self, agent: &str) -> BackendProvider {
        self.routes.get(agent).copied().unwrap_or(self.default)
    }

    /// The default provider for unmapped agents.
    pub fn default_provider(&self) -> BackendProvider {
        self.default
    }

    /// The backend of `provider`, enabled or not.
    pub fn backend(&self, provider: BackendProvider) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.provider == provider)
    }

    /// Every backend, enabled or not, in the order they were added.
    pub fn backends(&self) -> &[BackendConfig] {
        &self.backends
    }

    /// Every agent route.
    pub fn routes(&self) -> impl Iterator<Item = (&str, BackendProvider)> {
        self.routes.iter().map(|(agent, p)| (agent.as_str(), *p))
    }

    fn enabled(&self, provider: BackendProvider) -> Option<&BackendConfig> {
        self.backend(provider).filter(|b| b.enabled)
    }
}
