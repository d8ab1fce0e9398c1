//! See qosctl::fuzzing::policy: the same function the corpus replay (tests/fuzz_corpus.rs) calls.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qosctl::fuzzing::policy(data));
