//! `ao serve --simulated`'s DVM: a relay on loopback, a simulated NIP-90 service provider and a
//! simulated NWC wallet service, all labelled, for the `dvm` backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agent_orchestrator::BackendProvider;
use agent_orchestrator::Config;
use agent_orchestrator::signer::Relay;
use agent_orchestrator::types::Report;
use ao_dvm::sim::{DvmScript, SimDvm, SimNetwork, SimWallet};
use ao_dvm::{NwcWallet, Wallet};

use crate::CliError;

/// What runs the simulated `dvm` backend until it is dropped: a relay, a DVM, a wallet service.
pub(crate) struct SimulatedDvm {
    _relay: Relay,
    _dvm: SimDvm,
    _wallet: SimWallet,
}

/// For `--simulated`: a relay on loopback, a simulated DVM (21 sats a job) and a simulated NWC
/// wallet service (100,000 sats, 0.5 sat of fee a payment); every `dvm` backend is pointed at
/// them and enabled, and the wallet is the one that pays.
pub(crate) async fn simulated_dvm(
    config: &mut Config,
) -> Result<(SimulatedDvm, Arc<dyn Wallet>), CliError> {
    let sim = |e: &dyn std::fmt::Display| CliError::Simulator(std::io::Error::other(e.to_string()));
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], 0)), 100_000)
        .await
        .map_err(|e| sim(&Report::new(&e)))?;
    let network = SimNetwork::new();
    let wallet = SimWallet::start(relay.url(), network.clone(), 100_000_000, 500)
        .await
        .map_err(|e| sim(&e))?;
    let dvm = SimDvm::start(relay.url(), network, 21_000, DvmScript::Honest)
        .await
        .map_err(|e| sim(&e))?;
    for backend in &mut config.backends {
        if *backend.provider.get_ref() == BackendProvider::Dvm {
            backend.relays = vec![toml::Spanned::new(0..0, relay.url().to_owned())];
            backend.service_pubkey = Some(toml::Spanned::new(0..0, dvm.public_key().to_hex()));
            backend.enabled = true;
        }
    }
    let client = NwcWallet::from_uri(
        wallet.uri(),
        "the simulated wallet",
        Duration::from_secs(10),
    )
    .map_err(|e| sim(&e))?;
    eprintln!(
        "SIMULATED dvm backend: a simulated NIP-90 DVM {} and NWC wallet on the relay {} (no real sats)",
        dvm.public_key().to_hex(),
        relay.url()
    );
    Ok((
        SimulatedDvm {
            _relay: relay,
            _dvm: dvm,
            _wallet: wallet,
        },
        Arc::new(client),
    ))
}
