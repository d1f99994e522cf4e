//! The TOML configuration an operator (or whoever can write it) hands `ao serve`: an error with a
//! line number or a configuration, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ao_orchestrator::Config::from_toml(text);
    }
});
