//! Integration tests of posmesh-payments: the acquirer simulator binary and the ISO 8583
//! TCP connector end to end on loopback, and the wire format checked by pyiso8583.
//! One test binary (link once).

mod end_to_end;
mod python_frames;
mod support;
