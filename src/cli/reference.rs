//! The documents in `docs/` that restate the code, checked against it.
//!
//! `docs/config.md`, the configuration reference, is one table of every
//! configuration key, its `CUTRACE_<FIELD>` variable and the `cutrace run` option
//! that sets it. It is rendered from the code — the tracer's field list, each
//! field's doc comment in `tracer/src/config.rs`, the defaults, and the clap
//! definition of `cutrace run` — and compared with the committed file, so that it
//! cannot drift. After a change, `CUTRACE_UPDATE_DOCS=1 cargo test --bin cutrace
//! reference` rewrites it. `docs/windows.md` must hold the window table of the
//! tracer's crate documentation, whose examples the window machine's tests check.

use std::ffi::OsString;
use std::path::Path;

use clap::{Arg, CommandFactory, Parser};
use cutrace_tracer::{
    Activity, CONFIG_FIELDS, CaptureRange, GraphMode, ProfilerConfig, SortKey, Spelling, field_var,
};
use serde_json::{Map, Value, json};

use super::cli::Cli;
use super::run::{RunArgs, settings};

/// The variable that makes the test write the reference instead of comparing it.
const UPDATE_VAR: &str = "CUTRACE_UPDATE_DOCS";

/// An example value of one field, checked by the test against the tracer's own
/// reading of it.
struct Example {
    field: &'static str,
    /// The value in `CUTRACE_CONFIG`'s JSON.
    value: Value,
    /// Other keys the value needs to be valid.
    context: Value,
    /// The same value through `cutrace run`'s option, where one sets the field.
    option: &'static [&'static str],
}

fn examples() -> Vec<Example> {
    let example = |field, value, option| Example {
        field,
        value,
        context: json!({}),
        option,
    };
    vec![
        example("delay_iters", json!(10), &["--delay-iters", "10"]),
        example("max_iters", json!(5), &["--max-iters", "5"]),
        example("warmup_iters", json!(2), &["--warmup-iters", "2"]),
        Example {
            context: json!({"max_iters": 5}),
            ..example("repeat", json!(3), &["--repeat", "3"])
        },
        example("activities", json!(["kernel", "memcpy", "driver"]), &[]),
        example("graph_mode", json!("graph"), &[]),
        example("buffer_size", json!(4_194_304), &[]),
        example("max_buffer_mb", json!(512), &[]),
        example("latency_timestamps", json!(true), &[]),
        example("output_dir", json!("/tmp/traces"), &["-o", "/tmp/traces"]),
        example("worker_name", json!("decoder0"), &[]),
        example("rank", json!(1), &[]),
        example("world_size", json!(8), &[]),
        example("sort_by", json!("cpu_time_total"), &[]),
        example("row_limit", json!(-1), &[]),
        example(
            "capture_range",
            json!("cudaProfilerApi"),
            &["-c", "cudaProfilerApi"],
        ),
        example(
            "nvtx_step",
            json!("execute_model*"),
            &["--nvtx-step", "execute_model*"],
        ),
        example("delay_ms", json!(20000), &["--delay", "20"]),
        example("duration_ms", json!(5000), &["--duration", "5"]),
        example("shutdown_wait_ms", json!(60000), &[]),
    ]
}

/// The arguments of `cutrace run` that set no field, with an example each.
const RUN_ONLY: [(&str, &str); 2] = [
    (
        "check",
        "cutrace run --check --nvtx-step 'step*' --max-iters 5",
    ),
    ("command", "cutrace run -o traces -- python3 train.py"),
];

const INTRO: &str = "\
# Configuration reference

The tracer reads one configuration, from three places, the later winning: the JSON
object in `CUTRACE_CONFIG` (`CUTRACE_CONFIG='{\"max_iters\": 5}'`), then one
`CUTRACE_<FIELD>` variable per key. `cutrace run`'s options set those variables for
the command it runs, so they win over the caller's own. For the two keys vLLM has
variables for, `VLLM_PROFILER_DELAY_ITERS` and `VLLM_PROFILER_MAX_ITERS` count when
neither of the others sets the key, and `capture_range` is not `cudaProfilerApi`
(vLLM has then counted its steps itself before it calls `cudaProfilerStart`). Embedded, the same JSON goes to
`cutrace::ProfilerConfig::from_json` (Rust) or `cutrace_init` (C ABI; given NULL,
it reads the variables). Unknown keys
and values that cannot work together are errors, and `cutrace run` refuses them
before it starts anything; `cutrace run --check` checks a configuration without a
GPU. The window rules behind the iteration keys are in `windows.md`.

A variable's value is written as the JSON value would be, except that text is taken
as it is (`CUTRACE_OUTPUT_DIR=/tmp/traces`) and lists are comma-separated
(`CUTRACE_ACTIVITIES=kernel,memcpy`).

This file is generated from the code by a test (`src/cli/reference.rs`); after a
change, `CUTRACE_UPDATE_DOCS=1 cargo test --lib reference` rewrites it.

";

/// The reference as the code defines it today.
fn render() -> String {
    let docs = field_docs(&std::fs::read_to_string(config_source()).unwrap());
    let defaults = match serde_json::to_value(ProfilerConfig::default()).unwrap() {
        Value::Object(map) => map,
        other => panic!("the default configuration is not an object: {other}"),
    };
    let mut command = Cli::command();
    // Only a built command knows how many values each argument takes.
    command.build();
    let run = command.find_subcommand("run").expect("no run subcommand");
    let options = settings(&parse_run(&["--check"]), None);
    let examples = examples();

    let mut out = String::from(INTRO);
    out.push_str("| key | variable | `cutrace run` | meaning | default | example |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (field, spelling, vllm) in CONFIG_FIELDS {
        let example = examples
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no example for {field}: add one to examples()"));
        let option = options.iter().find(|s| s.field == field);
        assert_eq!(
            option.is_some(),
            !example.option.is_empty(),
            "{field}: an option example exactly where an option sets it"
        );
        let mut variable = code(&field_var(field));
        if let Some(vllm) = vllm {
            variable.push_str(&format!(", or vLLM's {}", code(vllm)));
        }
        let run_cell = option.map_or_else(String::new, |s| usage(find_arg(run, s.option)));
        let mut forms = vec![
            code(&format!("\"{field}\": {}", example.value)),
            code(&format!(
                "{}={}",
                field_var(field),
                shell_quote(&spell(spelling, &example.value))
            )),
        ];
        if !example.option.is_empty() {
            forms.push(code(&shell_line(example.option)));
        }
        let mut doc = docs
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, doc)| doc.clone())
            .unwrap_or_else(|| panic!("no doc comment for {field} in tracer/src/config.rs"));
        if let Some(names) = allowed(field) {
            doc.push_str(&format!(
                " Allowed: {}.",
                names.iter().map(|n| code(n)).collect::<Vec<_>>().join(", ")
            ));
        }
        row(
            &mut out,
            [
                &code(field),
                &variable,
                &run_cell,
                &doc,
                &default_cell(&defaults[field]),
                &forms.join(" · "),
            ],
        );
    }
    for (id, example) in RUN_ONLY {
        let arg = run
            .get_arguments()
            .find(|a| a.get_id() == id)
            .unwrap_or_else(|| panic!("cutrace run has no argument {id}"));
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let default = if arg.get_num_args().is_some_and(|n| n.takes_values()) {
            String::new()
        } else {
            "off".to_owned()
        };
        row(
            &mut out,
            ["", "", &usage(arg), &help, &default, &code(example)],
        );
    }
    out
}

/// The names a field of named values allows, as the configuration spells them.
fn allowed(field: &str) -> Option<Vec<String>> {
    fn names(values: impl IntoIterator<Item = serde_json::Result<Value>>) -> Vec<String> {
        values
            .into_iter()
            .map(|v| match v.unwrap() {
                Value::String(name) => name,
                other => panic!("{other} is not a name"),
            })
            .collect()
    }
    // Exhaustive matches, so that a new variant cannot be left out here.
    let graph_modes = [GraphMode::Node, GraphMode::Graph].map(|m| match m {
        GraphMode::Node | GraphMode::Graph => m,
    });
    let capture_ranges = [CaptureRange::None, CaptureRange::CudaProfilerApi].map(|c| match c {
        CaptureRange::None | CaptureRange::CudaProfilerApi => c,
    });
    match field {
        "activities" => Some(names(Activity::ALL.map(serde_json::to_value))),
        "graph_mode" => Some(names(graph_modes.map(serde_json::to_value))),
        "sort_by" => Some(names(SortKey::ALL.map(serde_json::to_value))),
        "capture_range" => Some(names(capture_ranges.map(serde_json::to_value))),
        _ => None,
    }
}

/// One table row; `|` inside a cell would end it.
fn row(out: &mut String, cells: [&str; 6]) {
    let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
    out.push_str(&format!("| {} |\n", cells.join(" | ")));
}

fn code(text: &str) -> String {
    format!("`{text}`")
}

fn default_cell(value: &Value) -> String {
    match value {
        Value::Null => "unset".to_owned(),
        Value::String(text) => code(text),
        other => code(&other.to_string()),
    }
}

/// How an option is written: `-c, --capture-range {none,cudaProfilerApi}`,
/// `--delay SECONDS`, `[COMMAND]...`.
fn usage(arg: &Arg) -> String {
    let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
    let value = if !takes_values {
        String::new()
    } else {
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        if !possible.is_empty() {
            format!("{{{}}}", possible.join(","))
        } else {
            arg.get_value_names()
                .map(|names| names.join(" "))
                .unwrap_or_else(|| arg.get_id().as_str().to_ascii_uppercase())
        }
    };
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let text = if names.is_empty() {
        format!("-- {value}...")
    } else if value.is_empty() {
        names.join(", ")
    } else {
        format!("{} {value}", names.join(", "))
    };
    code(&text)
}

/// The argument of `run` whose long name is `option` (`--delay`).
fn find_arg<'a>(run: &'a clap::Command, option: &str) -> &'a Arg {
    let long = option.trim_start_matches("--");
    run.get_arguments()
        .find(|a| a.get_long() == Some(long))
        .unwrap_or_else(|| panic!("cutrace run has no option {option}"))
}

/// A value as its `CUTRACE_<FIELD>` variable spells it.
fn spell(spelling: Spelling, value: &Value) -> String {
    match (spelling, value) {
        (Spelling::Text, Value::String(text)) => text.clone(),
        (Spelling::List, Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().expect("a list of names").to_owned())
            .collect::<Vec<_>>()
            .join(","),
        (Spelling::Scalar, value) => value.to_string(),
        (spelling, value) => panic!("{value} is no value for a {spelling:?} variable"),
    }
}

/// Quotes `text` for a POSIX shell where it needs it.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,=:".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn shell_line(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn config_source() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tracer/src/config.rs"))
}

fn reference_file() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md"))
}

/// The doc comment of each field of `struct ProfilerConfig`, joined into one line.
fn field_docs(source: &str) -> Vec<(String, String)> {
    let body = source
        .split_once("pub struct ProfilerConfig {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("no struct ProfilerConfig in tracer/src/config.rs");
    let mut docs = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    for line in body.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim());
        } else if let Some(field) = line
            .strip_prefix("pub ")
            .and_then(|rest| rest.split_once(':'))
            .map(|(name, _)| name)
        {
            docs.push((field.to_owned(), doc.join(" ")));
            doc.clear();
        }
    }
    docs
}

/// `cutrace run` with `args` and a command.
fn parse_run(args: &[&str]) -> RunArgs {
    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        run: RunArgs,
    }
    let words = std::iter::once("run").chain(args.iter().copied());
    Run::try_parse_from(words).unwrap().run
}

#[test]
fn reference_is_current() {
    let rendered = render();
    let path = reference_file();
    if std::env::var_os(UPDATE_VAR).is_some_and(|v| !v.is_empty()) {
        std::fs::write(path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != rendered {
        let line = committed
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/config.md is not what the code says (first difference at line {}); \
             run `{UPDATE_VAR}=1 cargo test --lib reference` and commit it",
            line + 1
        );
    }
}

#[test]
fn every_field_and_every_run_argument_is_in_the_reference() {
    let examples = examples();
    let fields: Vec<&str> = CONFIG_FIELDS.iter().map(|(f, ..)| *f).collect();
    assert_eq!(
        examples.iter().map(|e| e.field).collect::<Vec<_>>(),
        fields,
        "one example per field, in the field list's order"
    );
    let docs = field_docs(&std::fs::read_to_string(config_source()).unwrap());
    let mut documented: Vec<&str> = docs.iter().map(|(f, _)| f.as_str()).collect();
    let mut listed = fields.clone();
    documented.sort_unstable();
    listed.sort_unstable();
    assert_eq!(documented, listed, "the struct's fields and the field list");
    let command = Cli::command();
    let run = command.find_subcommand("run").unwrap();
    let options = settings(&parse_run(&["--check"]), None);
    for arg in run.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" {
            continue;
        }
        let sets_a_field = options
            .iter()
            .any(|s| arg.get_long() == Some(s.option.trim_start_matches("--")));
        let run_only = RUN_ONLY.iter().any(|(only, _)| *only == id);
        assert!(
            sets_a_field != run_only,
            "cutrace run's {id}: in the reference once, as a field's option or in RUN_ONLY"
        );
    }
}

#[test]
fn every_example_reads_as_the_tracer_reads_it() {
    let command_settings = |words: &[&str]| {
        let mut all = if words.contains(&"-o") {
            Vec::new()
        } else {
            vec!["-o", "out"]
        };
        all.extend_from_slice(words);
        all.push("prog");
        let args = parse_run(&all);
        let output = args
            .output
            .as_deref()
            .map(|p| std::path::absolute(p).unwrap());
        settings(&args, output.as_deref())
    };
    for (field, spelling, _) in CONFIG_FIELDS {
        let example = examples().into_iter().find(|e| e.field == field).unwrap();
        let mut object: Map<String, Value> = match &example.context {
            Value::Object(map) => map.clone(),
            _ => panic!("{field}: the context is not an object"),
        };
        object.insert(field.to_owned(), example.value.clone());
        let from_json = ProfilerConfig::from_json(&Value::Object(object).to_string())
            .unwrap_or_else(|e| panic!("{field}: {e}"));
        let read = |config: &ProfilerConfig| serde_json::to_value(config).unwrap()[field].clone();
        assert_eq!(read(&from_json), example.value, "{field}");

        let spelled = spell(spelling, &example.value);
        let context = example.context.to_string();
        let var = field_var(field);
        let from_env = ProfilerConfig::from_env_vars(|name| {
            if name == var {
                Some(spelled.clone())
            } else if name == cutrace_tracer::CONFIG_VAR {
                Some(context.clone())
            } else {
                None
            }
        })
        .unwrap_or_else(|e| panic!("{field}: {e}"));
        assert_eq!(from_env, from_json, "{field}: {var}={spelled}");

        if !example.option.is_empty() {
            let given = command_settings(example.option);
            let setting = given
                .iter()
                .find(|s| s.field == field)
                .unwrap_or_else(|| panic!("{field}: {:?} sets no field", example.option));
            assert_eq!(
                setting.value,
                Some(OsString::from(&spelled)),
                "{field}: {:?}",
                example.option
            );
        }
    }
}

#[test]
fn the_window_rules_hold_the_tracers_table() {
    let crate_doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tracer/src/lib.rs")).unwrap();
    let table: Vec<&str> = crate_doc
        .lines()
        .filter_map(|line| line.strip_prefix("//! "))
        .filter(|line| line.starts_with('|'))
        .collect();
    assert!(table.len() > 3, "no table in tracer/src/lib.rs");
    let windows =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/windows.md")).unwrap();
    assert!(
        windows.contains(&format!("\n{}\n", table.join("\n"))),
        "docs/windows.md lacks the window table of tracer/src/lib.rs, or has another"
    );
}
