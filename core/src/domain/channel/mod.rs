//! The channels a notification goes out on. Each owns what its medium allows: an SMS fits one
//! GSM-7 segment, an e-mail carries the full text, the consulate's JSON carries every field.

pub mod gsm7;
