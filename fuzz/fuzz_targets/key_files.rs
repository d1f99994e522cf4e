//! Share files and group files, as `ao sign`, `ao refresh` and the signer read them from disk:
//! an error or a value, never a panic; a share file is opened only when its key derivation is
//! cheap enough to fuzz.
#![no_main]

use ao_threshold::{GroupFile, ShareFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(group) = GroupFile::from_json(text) {
        let _ = group.to_group();
    }
    if let Ok(share) = ShareFile::from_json(text) {
        let params = share.kdf.params;
        if params.memory_kib <= 64 && params.iterations <= 2 && params.parallelism <= 2 {
            let _ = share.open("fuzz passphrase");
        }
    }
});
