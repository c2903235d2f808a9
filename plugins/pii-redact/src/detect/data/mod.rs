//! Tables generated from external data by `plugins/pii-redact/tools/gen_tables.py` (phone
//! numbering plans, the IBAN registry, census name statistics, USPS street suffixes). Not
//! formatted by rustfmt: they are rewritten whole by the generator.

#[rustfmt::skip]
pub mod iban;
#[rustfmt::skip]
pub mod names;
#[rustfmt::skip]
pub mod phone;
#[rustfmt::skip]
pub mod street;
