//! DPDK telemetry: commands answered on EAL's telemetry socket
//! (`<runtime dir>/dpdk_telemetry.v2`, a `SOCK_SEQPACKET` socket that
//! DPDK's `dpdk-telemetry.py` talks to).
//!
//! DPDK's callbacks carry no user data, so the Rust handlers live in a
//! process-wide registry keyed by command, and one C callback dispatches to
//! them. A handler returns a [`Reply`] made of plain Rust values; it is
//! checked against DPDK's limits (entry counts, name characters, string and
//! output lengths) before anything is handed to DPDK, so a reply is either
//! served whole or answered with `null`, never truncated or malformed.
//! Handlers run on DPDK's telemetry threads (one per client connection):
//! they must be `Send + Sync` and must not block for long.

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use crate::ffi;

/// Most entries in a dictionary.
pub const MAX_DICT_ENTRIES: usize = ffi::RTE_TEL_MAX_DICT_ENTRIES as usize;
/// Most entries in an array.
pub const MAX_ARRAY_ENTRIES: usize = ffi::RTE_TEL_MAX_ARRAY_ENTRIES as usize;
/// Longest name or string value in a dictionary or array (bytes, without
/// the terminating NUL).
pub const MAX_STRING_LEN: usize = ffi::RTE_TEL_MAX_STRING_LEN as usize - 1;
/// Longest single-string reply.
pub const MAX_SINGLE_STRING_LEN: usize = ffi::RTE_TEL_MAX_SINGLE_STRING_LEN as usize - 1;
/// The most JSON one reply may take: DPDK's output buffer (16 KiB) less
/// room for the `{"<command>":` wrapper (commands are at most 55 bytes).
pub const MAX_REPLY_JSON: usize = 16 * 1024 - 64;
/// Longest command, as DPDK stores it.
const MAX_COMMAND_LEN: usize = 55;

/// What a handler answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A dictionary: names (`[A-Za-z0-9_/]`) and values, in order.
    Dict(Vec<(String, Value)>),
    /// An array of numbers.
    U64s(Vec<u64>),
    /// An array of strings.
    Strings(Vec<String>),
    /// One string.
    String(String),
}

/// A dictionary value. DPDK 22.11 nests arrays in dictionaries, not
/// dictionaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number.
    U64(u64),
    /// A string.
    String(String),
    /// An array of numbers.
    U64s(Vec<u64>),
    /// An array of strings.
    Strings(Vec<String>),
}

/// A command handler: gets the parameters after the first comma of the
/// request (`/cmd,params`), answers a reply, or `None` for DPDK's error
/// answer (`{"/cmd": null}`).
pub type Handler = Arc<dyn Fn(Option<&str>) -> Option<Reply> + Send + Sync>;

/// Why a command could not be registered, or a reply not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryError {
    /// The command is not `/` followed by `[A-Za-z0-9_/]`, or too long.
    #[error("telemetry command {0:?} must be '/' and letters, digits, '_' or '/', at most {MAX_COMMAND_LEN} bytes")]
    BadCommand(String),
    /// The help text is too long or holds a NUL or a quote.
    #[error("telemetry help text for {0} is too long or holds a NUL or a quote")]
    BadHelp(String),
    /// DPDK refused the registration.
    #[error("rte_telemetry_register_cmd({command}) failed: {code}")]
    Register {
        /// The command.
        command: String,
        /// The negative errno DPDK returned.
        code: i32,
    },
    /// A dictionary name DPDK would refuse.
    #[error(
        "telemetry name {0:?} must be letters, digits, '_' or '/', at most {MAX_STRING_LEN} bytes"
    )]
    BadName(String),
    /// A string DPDK would truncate, or that DPDK 22.11 would put into
    /// JSON unescaped (quotes, backslashes, control characters).
    #[error("telemetry string {0:?} is too long or holds characters DPDK does not escape")]
    BadString(String),
    /// More entries than DPDK holds.
    #[error("telemetry reply has {n} entries in one {what}, DPDK holds {max}")]
    TooManyEntries {
        /// `dictionary` or `array`.
        what: &'static str,
        /// Entries in the reply.
        n: usize,
        /// DPDK's limit.
        max: usize,
    },
    /// The reply's JSON would not fit DPDK's output buffer.
    #[error("telemetry reply of about {0} bytes does not fit DPDK's {MAX_REPLY_JSON}-byte buffer")]
    TooLarge(usize),
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/')
}

fn check_name(s: &str) -> Result<(), TelemetryError> {
    if is_name(s, MAX_STRING_LEN) {
        Ok(())
    } else {
        Err(TelemetryError::BadName(s.to_owned()))
    }
}

fn check_string(s: &str, max: usize) -> Result<(), TelemetryError> {
    if s.len() <= max && !s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        Ok(())
    } else {
        Err(TelemetryError::BadString(s.to_owned()))
    }
}

fn check_count(what: &'static str, n: usize, max: usize) -> Result<(), TelemetryError> {
    if n <= max {
        Ok(())
    } else {
        Err(TelemetryError::TooManyEntries { what, n, max })
    }
}

/// Checks the strings of an array; returns the JSON length of the array.
fn check_strings(v: &[String]) -> Result<usize, TelemetryError> {
    check_count("array", v.len(), MAX_ARRAY_ENTRIES)?;
    let mut len = 2;
    for s in v {
        check_string(s, MAX_STRING_LEN)?;
        len += s.len() + 3;
    }
    Ok(len)
}

/// Checks the numbers of an array; returns the JSON length of the array.
fn check_u64s(v: &[u64]) -> Result<usize, TelemetryError> {
    check_count("array", v.len(), MAX_ARRAY_ENTRIES)?;
    Ok(2 + v.len() * 21)
}

impl Reply {
    /// Checks the reply against DPDK's limits; returns an upper bound of
    /// its JSON length.
    pub fn check(&self) -> Result<usize, TelemetryError> {
        let len = match self {
            Reply::Dict(entries) => {
                check_count("dictionary", entries.len(), MAX_DICT_ENTRIES)?;
                let mut len = 2;
                for (name, value) in entries {
                    check_name(name)?;
                    len += name.len() + 4;
                    len += match value {
                        Value::U64(_) => 20,
                        Value::String(s) => {
                            check_string(s, MAX_STRING_LEN)?;
                            s.len() + 2
                        }
                        Value::U64s(v) => check_u64s(v)?,
                        Value::Strings(v) => check_strings(v)?,
                    };
                }
                len
            }
            Reply::U64s(v) => check_u64s(v)?,
            Reply::Strings(v) => check_strings(v)?,
            Reply::String(s) => {
                check_string(s, MAX_SINGLE_STRING_LEN)?;
                s.len() + 2
            }
        };
        if len > MAX_REPLY_JSON {
            return Err(TelemetryError::TooLarge(len));
        }
        Ok(len)
    }
}

/// One registered command.
struct Command {
    name: String,
    handler: Option<Handler>,
}

/// Every command registered in this process (DPDK cannot unregister one).
static COMMANDS: Mutex<Vec<Command>> = Mutex::new(Vec::new());

/// A registered command: dropping it takes the handler away (DPDK then
/// answers the command with `null`).
#[must_use = "dropping the registration takes the handler away"]
pub struct Registration {
    name: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Registration").field(&self.name).finish()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut commands = COMMANDS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = commands.iter_mut().find(|c| c.name == self.name) {
            c.handler = None;
        }
    }
}

/// Registers `command` (e.g. `/wgdp/info`) with `help` and its handler.
/// Registering a command again replaces its handler. Works before or after
/// EAL is initialised; the socket exists once it is (unless EAL got
/// `--no-telemetry`).
pub fn register(
    command: &str,
    help: &str,
    handler: Handler,
) -> Result<Registration, TelemetryError> {
    if command.len() < 2 || !command.starts_with('/') || !is_name(command, MAX_COMMAND_LEN) {
        return Err(TelemetryError::BadCommand(command.to_owned()));
    }
    if check_string(help, MAX_STRING_LEN).is_err() {
        return Err(TelemetryError::BadHelp(command.to_owned()));
    }
    let mut commands = COMMANDS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = commands.iter_mut().find(|c| c.name == command) {
        c.handler = Some(handler);
    } else {
        let c_command =
            CString::new(command).map_err(|_| TelemetryError::BadCommand(command.to_owned()))?;
        let c_help = CString::new(help).map_err(|_| TelemetryError::BadHelp(command.to_owned()))?;
        // SAFETY: both strings are valid and NUL-terminated; DPDK copies
        // them. The callback is a plain function that never unwinds.
        let code = unsafe {
            ffi::rte_telemetry_register_cmd(c_command.as_ptr(), Some(dispatch), c_help.as_ptr())
        };
        if code != 0 {
            return Err(TelemetryError::Register {
                command: command.to_owned(),
                code,
            });
        }
        commands.push(Command {
            name: command.to_owned(),
            handler: Some(handler),
        });
    }
    Ok(Registration {
        name: command.to_owned(),
    })
}

/// The C callback of every command: finds the handler, runs it, writes its
/// reply. Returns a negative errno for DPDK's `null` answer.
unsafe extern "C" fn dispatch(
    cmd: *const c_char,
    params: *const c_char,
    data: *mut ffi::rte_tel_data,
) -> c_int {
    const EINVAL: c_int = 22;
    if cmd.is_null() || data.is_null() {
        return -EINVAL;
    }
    // SAFETY: DPDK passes NUL-terminated strings, params possibly NULL.
    let cmd = unsafe { CStr::from_ptr(cmd) }.to_string_lossy();
    let params = (!params.is_null()).then(|| {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(params) }
            .to_string_lossy()
            .into_owned()
    });
    let handler = {
        let commands = COMMANDS.lock().unwrap_or_else(PoisonError::into_inner);
        commands
            .iter()
            .find(|c| c.name == cmd)
            .and_then(|c| c.handler.clone())
    };
    let Some(handler) = handler else {
        return -EINVAL;
    };
    let reply = catch_unwind(AssertUnwindSafe(|| handler(params.as_deref())));
    let Ok(Some(reply)) = reply else {
        return -EINVAL;
    };
    if let Err(e) = reply.check() {
        tracing::warn!("telemetry {cmd}: {e}");
        return -EINVAL;
    }
    // SAFETY: `data` is the reply DPDK handed us, and the reply was checked
    // against every limit the builders enforce.
    match unsafe { write(data, &reply) } {
        Ok(()) => 0,
        Err(code) => code,
    }
}

/// A C string of a checked name or value (no NUL inside).
fn c_string(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// Turns a DPDK builder's return value into a result.
fn ok(code: c_int) -> Result<(), c_int> {
    if code < 0 {
        Err(code)
    } else {
        Ok(())
    }
}

/// A container holding an array, allocated for a dictionary entry.
///
/// # Safety
/// The returned pointer is handed to `rte_tel_data_add_dict_container`
/// with `keep = 0` (DPDK frees it) or freed here on failure.
unsafe fn array_container(value: &Value) -> Result<*mut ffi::rte_tel_data, c_int> {
    const ENOMEM: c_int = 12;
    // SAFETY: allocates a fresh data object (NULL on failure, checked).
    let c = unsafe { ffi::rte_tel_data_alloc() };
    if c.is_null() {
        return Err(-ENOMEM);
    }
    let filled = match value {
        // SAFETY: `c` is the valid, empty object just allocated.
        Value::U64s(v) => unsafe { write_u64s(c, v) },
        // SAFETY: as above.
        Value::Strings(v) => unsafe { write_strings(c, v) },
        Value::U64(_) | Value::String(_) => Ok(()),
    };
    if let Err(code) = filled {
        // SAFETY: ours, not handed to DPDK; freed once.
        unsafe { ffi::rte_tel_data_free(c) };
        return Err(code);
    }
    Ok(c)
}

/// # Safety
/// `d` is a valid, empty telemetry data object.
unsafe fn write_u64s(d: *mut ffi::rte_tel_data, v: &[u64]) -> Result<(), c_int> {
    // SAFETY: `d` is valid and empty (the caller's contract).
    ok(unsafe { ffi::rte_tel_data_start_array(d, ffi::rte_tel_value_type::RTE_TEL_U64_VAL) })?;
    for x in v {
        // SAFETY: `d` is the array just started; DPDK checks its capacity.
        ok(unsafe { ffi::rte_tel_data_add_array_u64(d, *x) })?;
    }
    Ok(())
}

/// # Safety
/// `d` is a valid, empty telemetry data object.
unsafe fn write_strings(d: *mut ffi::rte_tel_data, v: &[String]) -> Result<(), c_int> {
    // SAFETY: `d` is valid and empty (the caller's contract).
    ok(unsafe { ffi::rte_tel_data_start_array(d, ffi::rte_tel_value_type::RTE_TEL_STRING_VAL) })?;
    for s in v {
        // SAFETY: `d` is the array just started; the C string lives
        // through the call and DPDK copies it.
        ok(unsafe { ffi::rte_tel_data_add_array_string(d, c_string(s).as_ptr()) })?;
    }
    Ok(())
}

/// Writes a checked reply into DPDK's data object.
///
/// # Safety
/// `d` is the data object DPDK passed to the callback.
unsafe fn write(d: *mut ffi::rte_tel_data, reply: &Reply) -> Result<(), c_int> {
    match reply {
        // SAFETY: `d` is DPDK's fresh reply object (the caller's contract).
        Reply::U64s(v) => unsafe { write_u64s(d, v) },
        // SAFETY: as above.
        Reply::Strings(v) => unsafe { write_strings(d, v) },
        // SAFETY: as above; the C string lives through the call (copied).
        Reply::String(s) => ok(unsafe { ffi::rte_tel_data_string(d, c_string(s).as_ptr()) }),
        Reply::Dict(entries) => {
            // SAFETY: as above.
            ok(unsafe { ffi::rte_tel_data_start_dict(d) })?;
            for (name, value) in entries {
                let name = c_string(name);
                let code = match value {
                    // SAFETY: `d` is the dictionary just started; `name`
                    // lives through the call (DPDK copies it).
                    Value::U64(x) => unsafe {
                        ffi::rte_tel_data_add_dict_u64(d, name.as_ptr(), *x)
                    },
                    // SAFETY: as above, and the value's C string too.
                    Value::String(s) => unsafe {
                        ffi::rte_tel_data_add_dict_string(d, name.as_ptr(), c_string(s).as_ptr())
                    },
                    Value::U64s(_) | Value::Strings(_) => {
                        // SAFETY: `c` goes to DPDK below or is freed here.
                        let c = unsafe { array_container(value) }?;
                        // keep = 0: DPDK frees the container with the reply.
                        // SAFETY: `d` is the dictionary just started, `c` a
                        // filled container, `name` lives through the call.
                        let code =
                            unsafe { ffi::rte_tel_data_add_dict_container(d, name.as_ptr(), c, 0) };
                        if code < 0 {
                            // SAFETY: DPDK refused `c`: still ours, freed once.
                            unsafe { ffi::rte_tel_data_free(c) };
                        }
                        code
                    }
                };
                ok(code)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_checked_against_dpdk_limits() {
        let fine = Reply::Dict(vec![
            ("rx_bytes".into(), Value::U64(1)),
            (
                "endpoint".into(),
                Value::String("[2001:db8::1]:51820".into()),
            ),
            (
                "allowed_ips".into(),
                Value::Strings(vec!["10.0.0.0/8".into()]),
            ),
            ("lcores/all".into(), Value::U64s(vec![1, 2])),
        ]);
        assert!(fine.check().is_ok());
        let bad_name = Reply::Dict(vec![("rx-bytes".into(), Value::U64(1))]);
        assert!(matches!(bad_name.check(), Err(TelemetryError::BadName(_))));
        let quote = Reply::Strings(vec!["a\"b".into()]);
        assert!(matches!(quote.check(), Err(TelemetryError::BadString(_))));
        let long = Reply::Strings(vec!["x".repeat(MAX_STRING_LEN + 1)]);
        assert!(matches!(long.check(), Err(TelemetryError::BadString(_))));
        let many = Reply::U64s(vec![0; MAX_ARRAY_ENTRIES + 1]);
        assert!(matches!(
            many.check(),
            Err(TelemetryError::TooManyEntries { .. })
        ));
        let big = Reply::Strings(vec!["k".repeat(100); 200]);
        assert!(matches!(big.check(), Err(TelemetryError::TooLarge(_))));
        assert!(Reply::String("x".repeat(MAX_SINGLE_STRING_LEN))
            .check()
            .is_ok());
    }

    #[test]
    fn commands_are_checked_before_dpdk_sees_them() {
        let h: Handler = Arc::new(|_| None);
        for bad in ["wgdp", "/wgdp info", "/", &format!("/{}", "x".repeat(60))] {
            assert!(
                matches!(
                    register(bad, "help", h.clone()),
                    Err(TelemetryError::BadCommand(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            register("/wgdp/x", "a \"quoted\" help", h),
            Err(TelemetryError::BadHelp(_))
        ));
    }
}
