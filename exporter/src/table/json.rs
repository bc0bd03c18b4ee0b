//! Rows as JSON for `cutrace report --format json`: the wire shape, kept apart from
//! the rows it is filled from.

use serde::Serialize;

use super::aggregate::Row;
use super::format::us;

/// One row on the wire; times in microseconds.
#[derive(Serialize)]
struct JsonRow<'a> {
    name: &'a str,
    kind: &'static str,
    calls: u64,
    self_cuda_us: f64,
    cuda_total_us: f64,
    self_cpu_us: f64,
    cpu_total_us: f64,
}

impl<'a> From<&'a Row> for JsonRow<'a> {
    fn from(row: &'a Row) -> Self {
        JsonRow {
            name: &row.name,
            kind: row.kind.as_str(),
            calls: row.calls,
            self_cuda_us: us(row.self_cuda_ns),
            cuda_total_us: us(row.cuda_total_ns),
            self_cpu_us: us(row.self_cpu_ns),
            cpu_total_us: us(row.cpu_total_ns),
        }
    }
}

/// `rows` as a pretty-printed JSON array, in their order.
pub(crate) fn rows_json(rows: &[&Row]) -> String {
    let wire: Vec<JsonRow> = rows.iter().map(|&r| JsonRow::from(r)).collect();
    // Serializing plain structs of strings and finite numbers cannot fail.
    serde_json::to_string_pretty(&wire).unwrap_or_default()
}
