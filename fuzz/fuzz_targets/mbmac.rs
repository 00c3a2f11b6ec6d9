//! The multi-buffer keyed BLAKE2s (`mbmac`) against `blake2`'s keyed
//! BLAKE2s-128, on every implementation this CPU has: a burst of inputs
//! with fuzzed lengths under one fuzzed key, their MACs computed in one
//! call and compared with `blake2`'s input by input, and with the scalar
//! `Key::mac` of the input split in two; then the same inputs under a
//! 16-byte key each (`mac_many_keyed`, the mac2s under their cookies),
//! derived from the fuzzed key and the input's position.
//!
//! Input: the key length (a byte, mod 33; 0 must be refused) and the key;
//! then per input, while input remains and at most 40 inputs: its length
//! (two bytes, mod 400) and its bytes (zeros past the end).
//! Checked: nothing panics; a key of 0 bytes is refused; every MAC equals
//! `blake2`'s.
#![no_main]

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2sMac;
use libfuzzer_sys::fuzz_target;
use mbmac::{mac_many_keyed_with, Isa, Job, Key};
use wgdp_fuzz::input::Reader;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let key_len = usize::from(r.u8() % 33);
    let mut raw = r.take(key_len).to_vec();
    raw.resize(key_len, 0);
    let Some(key) = Key::from_slice(&raw) else {
        assert_eq!(key_len, 0, "a key of 1 to 32 bytes was refused");
        return;
    };
    let mut inputs = Vec::new();
    while !r.is_empty() && inputs.len() < 40 {
        let len = usize::from(r.u16()) % 400;
        let mut input = r.take(len).to_vec();
        input.resize(len, 0);
        inputs.push(input);
    }
    let oracle = |key: &[u8], input: &[u8]| -> [u8; 16] {
        let mut m = <Blake2sMac<U16> as KeyInit>::new_from_slice(key).expect("key length");
        m.update(input);
        m.finalize().into_bytes().into()
    };
    let want: Vec<[u8; 16]> = inputs.iter().map(|input| oracle(&raw, input)).collect();
    for isa in Isa::available() {
        let mut jobs: Vec<Job<'_>> = inputs.iter().map(|i| Job::new(i)).collect();
        key.mac_many_with(isa, &mut jobs);
        for (i, (job, want)) in jobs.iter().zip(&want).enumerate() {
            assert_eq!(&job.mac, want, "{isa:?}, input {i}");
        }
    }
    for (input, want) in inputs.iter().zip(&want) {
        let (a, b) = input.split_at(input.len() / 2);
        assert_eq!(&key.mac(&[a, b]), want, "scalar, split");
    }
    let keys: Vec<[u8; 16]> = (0..inputs.len())
        .map(|i| core::array::from_fn(|j| raw[(i + j) % key_len] ^ i as u8))
        .collect();
    for isa in Isa::available() {
        let mut jobs: Vec<Job<'_>> = inputs.iter().map(|i| Job::new(i)).collect();
        mac_many_keyed_with(isa, &keys, &mut jobs);
        for (i, ((job, input), k)) in jobs.iter().zip(&inputs).zip(&keys).enumerate() {
            assert_eq!(job.mac, oracle(k, input), "{isa:?}, keyed, input {i}");
        }
    }
});
