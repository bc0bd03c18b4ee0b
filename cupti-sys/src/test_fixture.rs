//! Test fixture: tiny shared objects that stand in for libcupti, compiled at test
//! time with the system C compiler (`cc`). They export CUPTI's function names with
//! scripted answers, so the loader and the result layer can be tested on machines
//! without CUDA. Never shipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which functions a fixture exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbols {
    /// Every required function and the external-correlation pair; no other optional one.
    All,
    /// `cuptiGetVersion` alone.
    VersionOnly,
    /// No CUPTI function at all.
    None,
}

/// A libcupti test fixture to build.
#[derive(Debug, Clone)]
pub struct CuptiFixture {
    version: u32,
    version_status: u32,
    symbols: Symbols,
    tag: Option<&'static str>,
}

/// What a fixture's `cuptiGetTimestamp` answers.
pub const FIXTURE_TIMESTAMP: u64 = 1_234_567_890_123;

/// What a fixture's `cuptiActivityGetNumDroppedRecords` answers.
pub const FIXTURE_DROPPED: usize = 7;

/// The answers of the stubs. `cuptiSubscribe` fails as though Nsight Systems held
/// CUPTI; `cuptiActivityFlushAll` as though there were no driver;
/// `cuptiActivityGetNextRecord` reports an empty buffer.
const STUBS: &str = r#"
#include <stdio.h>
static char result_text[64];
int cuptiGetResultString(unsigned result, const char **text) {
    snprintf(result_text, sizeof result_text, "fixture text for %u", result);
    *text = result_text;
    return 0;
}
int cuptiSubscribe(void **subscriber, void *callback, void *userdata) { return 39; }
int cuptiUnsubscribe(void *subscriber) { return 0; }
int cuptiEnableCallback(uint32_t enable, void *subscriber, unsigned domain, uint32_t cbid) { return 0; }
int cuptiEnableDomain(uint32_t enable, void *subscriber, unsigned domain) { return 0; }
int cuptiActivityEnable(unsigned kind) { return 0; }
int cuptiActivityDisable(unsigned kind) { return 0; }
int cuptiActivityRegisterCallbacks(void *requested, void *completed) { return 0; }
int cuptiActivityFlushAll(uint32_t flag) { return 15; }
int cuptiActivityGetNextRecord(uint8_t *buffer, size_t size, void **record) { return 12; }
int cuptiActivityGetNumDroppedRecords(void *context, uint32_t stream, size_t *dropped) {
    *dropped = FIXTURE_DROPPED;
    return 0;
}
int cuptiGetTimestamp(uint64_t *timestamp) { *timestamp = FIXTURE_TIMESTAMP; return 0; }
static uint64_t external_id;
int cuptiActivityPushExternalCorrelationId(unsigned kind, uint64_t id) { external_id = id; return 0; }
int cuptiActivityPopExternalCorrelationId(unsigned kind, uint64_t *id) { *id = external_id; return 0; }
"#;

impl CuptiFixture {
    /// A fixture whose `cuptiGetVersion` reports `version`, exporting every required
    /// function.
    pub fn new(version: u32) -> Self {
        CuptiFixture {
            version,
            version_status: 0,
            symbols: Symbols::All,
            tag: None,
        }
    }

    /// Which functions to export.
    pub fn symbols(mut self, symbols: Symbols) -> Self {
        self.symbols = symbols;
        self
    }

    /// The result code `cuptiGetVersion` returns.
    pub fn version_status(mut self, code: u32) -> Self {
        self.version_status = code;
        self
    }

    /// The ELF symbol version to tag every symbol with, as libcupti does.
    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Compiles the fixture to `dir/file_name` (creating `dir`) and returns that path.
    pub fn build(&self, dir: &Path, file_name: &str) -> PathBuf {
        let work = tempfile::tempdir().unwrap();
        let mut source = format!(
            "#include <stdint.h>\n#include <stddef.h>\n\
             #define FIXTURE_TIMESTAMP {FIXTURE_TIMESTAMP}ull\n\
             #define FIXTURE_DROPPED {FIXTURE_DROPPED}\n"
        );
        if self.symbols != Symbols::None {
            writeln!(
                source,
                "int cuptiGetVersion(uint32_t *v) {{ *v = {}; return {}; }}",
                self.version, self.version_status
            )
            .unwrap();
        } else {
            source.push_str("int not_cupti(void) { return 0; }\n");
        }
        if self.symbols == Symbols::All {
            source.push_str(STUBS);
        }
        let source_path = work.path().join("fixture.c");
        std::fs::write(&source_path, source).unwrap();

        std::fs::create_dir_all(dir).unwrap();
        let output = dir.join(file_name);
        let mut cc = Command::new("cc");
        cc.args(["-shared", "-fPIC", "-o"])
            .arg(&output)
            .arg(&source_path);
        if let Some(tag) = self.tag {
            let script = work.path().join("symbols.map");
            std::fs::write(&script, format!("{tag} {{ global: *; }};\n")).unwrap();
            cc.arg(format!("-Wl,--version-script={}", script.display()));
        }
        let status = cc
            .status()
            .expect("the libcupti test fixture needs a C compiler: cc");
        assert!(
            status.success(),
            "cc failed to build the libcupti test fixture"
        );
        output
    }
}
