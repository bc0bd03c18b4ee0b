//! Raw bindings to NVIDIA CUPTI, loaded at run time.

#![deny(missing_docs)]

pub mod sys;
