//! The layout `scripts/install.sh` makes: `PREFIX/bin/cutrace` finds
//! `PREFIX/lib/libcutrace.so` by itself, so `cutrace run` traces with nothing set.

use crate::util::{
    TestDir, clean_command, fake_program, injection_library, kernels_and_ranges, stderr, traces,
    with_stand_ins,
};

#[test]
fn an_installed_cutrace_finds_its_library_in_lib() {
    let dir = TestDir::new();
    let (bin, lib) = (dir.path("prefix/bin"), dir.path("prefix/lib"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_cutrace"), bin.join("cutrace")).unwrap();
    std::fs::copy(injection_library(), lib.join("libcutrace.so")).unwrap();

    let out_dir = dir.path("traces");
    let mut command = clean_command(bin.join("cutrace"));
    let out = with_stand_ins(&mut command)
        .arg("run")
        .arg("-o")
        .arg(&out_dir)
        .arg("--")
        .arg(fake_program())
        .args(["kernel", "gemm", "10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("untraced"), "{}", stderr(&out));
    let traces = traces(&out_dir);
    assert_eq!(traces.len(), 1, "{}", stderr(&out));
    assert_eq!(kernels_and_ranges(&traces[0].1).0, ["gemm"]);
}
