//! The wg-quick importer (`conf::import_wg_quick`). Checked: nothing
//! panics; every error names the file; an imported table is valid TOML
//! whose only problems, if any, are the port and DPDK placeholders the
//! operator has to fill in (its keys, peers and prefixes are valid).
#![no_main]

use conf::{import_wg_quick, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match import_wg_quick(text, "wg0.conf") {
        Ok(imported) => {
            if let Err(errors) = Config::from_str(&imported.toml, "imported.toml") {
                for e in errors.to_string().lines() {
                    let field = e.splitn(4, ':').nth(3).unwrap_or(e).trim_start();
                    assert!(
                        field.starts_with("ports.") || field.starts_with("dpdk."),
                        "the imported table has an error outside the placeholders: {e}\n{}",
                        imported.toml
                    );
                }
            }
        }
        Err(errors) => {
            for line in errors.to_string().lines() {
                assert!(
                    line.starts_with("wg0.conf:"),
                    "error without origin: {line:?}"
                );
            }
        }
    }
});
