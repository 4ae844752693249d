//! Fuzzes the frame decoder: the input is the byte stream, fed in chunks whose size is
//! derived from the input length (so corpus files are plain streams).
//! Invariants: no panic; every frame popped is at most FRAME_BYTES_MAX bytes; re-encoding
//! the popped frames reproduces the consumed prefix of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posmesh_mesh::frame::{encode_frame, FrameDecoder, FRAME_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    let stream = data;
    let chunk_len = stream.len() % 13 + 1;
    let mut decoder = FrameDecoder::new();
    let mut reencoded = Vec::new();
    for chunk in stream.chunks(chunk_len) {
        if decoder.push(chunk).is_err() {
            return;
        }
        loop {
            match decoder.pop() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= FRAME_BYTES_MAX);
                    reencoded.extend(encode_frame(&frame).expect("frame within limit"));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    // Overlong varints decode to the same length but re-encode shorter, so compare
    // payload-wise only when the input used minimal prefixes.
    if reencoded.len() + decoder.buffered_bytes() == stream.len() {
        assert_eq!(&stream[..reencoded.len()], &reencoded[..]);
    }
});
