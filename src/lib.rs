//! selectloop (crate docs: written below once the core settles)
#![deny(missing_docs)]
pub mod sys;
