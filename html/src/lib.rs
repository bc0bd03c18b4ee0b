//! The cutrace report as one HTML page that opens offline in any browser: its
//! style, its script and its charts are inside it, and it fetches nothing.
//!
//! [`render`] turns the report's figures ([`cutrace_analysis::Figures`], what
//! `cutrace report --format json` prints) and each trace's key-averages rows
//! ([`Table`]) into the page's text. It computes no figure of its own: every
//! number it shows is one of those, marked with its place in the JSON (`page`'s
//! documentation says how), so that a test can hold the page to the JSON. Charts
//! are SVG drawn here (`charts`), the tables' sorting and filtering a few lines of
//! script. [`of_trace`] makes what the page needs of one trace. Reading traces and
//! writing the file are the command's job.

#![deny(missing_docs)]

mod charts;
mod page;
mod trace;

pub use page::{Table, render};
pub use trace::of_trace;
