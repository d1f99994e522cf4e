//! ao-dvm end to end over a relay.
