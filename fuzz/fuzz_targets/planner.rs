//! See qosctl::fuzzing::planner: the same function the corpus replay (tests/fuzz_corpus.rs) calls.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qosctl::fuzzing::planner(data));
