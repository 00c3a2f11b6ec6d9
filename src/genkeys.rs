//! `wgdp gen-keys` (hidden): many fresh X25519 key pairs at once, for
//! building large test tables (`scripts/bench-scale.sh`); `wg genkey` and
//! `wg pubkey` cost two processes per key, far too slow for 100k peers.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use clap::Args;
use zeroize::Zeroizing;

/// Options of `wgdp gen-keys`.
#[derive(Debug, Args)]
pub struct GenKeysArgs {
    /// How many key pairs to print.
    #[arg(long, default_value_t = 1)]
    count: usize,
}

/// Prints `PRIVATE PUBLIC` (base64, as `wg genkey` / `wg pubkey` print
/// them) per line, private keys drawn from `/dev/urandom`.
pub fn run(args: &GenKeysArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut random = File::open("/dev/urandom")?;
    let out = io::stdout();
    let mut out = BufWriter::new(out.lock());
    let mut bytes = Zeroizing::new([0u8; 32]);
    for _ in 0..args.count {
        random.read_exact(&mut bytes[..])?;
        let private = conf::PrivateKey::from_bytes(*bytes);
        let public = private.public_key();
        writeln!(out, "{} {public}", private.to_base64().as_str())?;
    }
    out.flush()?;
    Ok(())
}
