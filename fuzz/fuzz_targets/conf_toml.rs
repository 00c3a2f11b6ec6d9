//! The tunnel-table loader (`conf::Config::from_str`: TOML parsing and
//! every validation rule). Checked: nothing panics; every error is
//! reported as `origin:line:column: ...` or `origin: ...`; a table that
//! loads renders (`Config::to_toml_string`) to a table that loads back to
//! the same value.
#![no_main]

use conf::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_str(text, "fuzz.toml") {
        Ok(config) => {
            let rendered = config.to_toml_string();
            let again = Config::from_str(&rendered, "rendered.toml")
                .unwrap_or_else(|e| panic!("the rendered table does not load: {e}\n{rendered}"));
            assert_eq!(
                again, config,
                "the rendered table loads differently:\n{rendered}"
            );
        }
        Err(errors) => {
            let message = errors.to_string();
            assert!(!message.is_empty(), "an empty error");
            for line in message.lines() {
                assert!(
                    line.starts_with("fuzz.toml:"),
                    "error without origin: {line:?}"
                );
            }
        }
    }
});
