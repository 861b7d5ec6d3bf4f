//! `.ci/setup --check` decides "present" the way the build decides it, whatever this machine
//! has installed: every case runs the detection against a fake root directory and a `PATH`
//! that holds only the fake root's `bin/`, with the build's variables (`LIBCLANG_PATH`,
//! `LLVM_CONFIG_PATH`, `CC`, `CXX`, `PROTOC`) cleared.
//!
//! The first case is the bug that hid behind a green CI: the image ships
//! `libclang-cpp.so.14`, a loose `libclang*.so*` glob took it for libclang, and the build then
//! died in `clang-sys`.
#![allow(clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A 64-bit ELF header, as clang-sys checks it (magic + class 2), padded.
const ELF64: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
/// A 32-bit ELF header (class 1): clang-sys rejects it on a 64-bit target.
const ELF32: &[u8] = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0";

struct FakeRoot {
    dir: tempfile::TempDir,
}

impl FakeRoot {
    /// A root whose `bin/` has a working `c++`, `cc` and a protoc 3.21 (`libprotoc 21.12`),
    /// so that only the case's own change decides the outcome.
    fn new() -> Self {
        let root = FakeRoot { dir: tempfile::tempdir().expect("temp dir") };
        root.tool("c++", "echo 'c++ (fake) 12.2.0'");
        root.tool("cc", "echo 'cc (fake) 12.2.0'");
        root.tool("protoc", "echo 'libprotoc 21.12'");
        root
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn file(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }

    fn link(&self, rel: &str, target: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        symlink(target, path).expect("symlink");
    }

    /// An executable `bin/NAME` running the shell `body`.
    fn tool(&self, name: &str, body: &str) {
        let path = self.path(&format!("bin/{name}"));
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// Runs `.ci/setup --check` against this root; returns (exit code, report).
    fn check(&self, env: &[(&str, &Path)]) -> (i32, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/setup");
        let mut cmd = Command::new("/bin/bash");
        cmd.arg(script)
            .arg("--check")
            .env_clear()
            .env("PATH", self.path("bin"))
            .env("ROCKLOG_SETUP_ROOT", self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run bash .ci/setup --check");
        let report = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().expect("exited, not killed"), report)
    }
}

fn assert_installs(root: &FakeRoot, env: &[(&str, &Path)], package: &str) {
    let (code, report) = root.check(env);
    assert_eq!(code, 3, "--check must exit 3 when something is missing:\n{report}");
    assert!(report.contains(&format!("install {package}:")), "expected `install {package}`:\n{report}");
}

#[test]
fn only_libclang_cpp_is_not_libclang() {
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang-cpp.so.14", ELF64);
    root.link("usr/lib/x86_64-linux-gnu/libclang-cpp.so.14", "../llvm-14/lib/libclang-cpp.so.14");
    assert_installs(&root, &[], "libclang-dev");
}

#[test]
fn libclang_dev_layout_is_present() {
    // What Debian 12's libclang-14-dev + libclang1-14 lay down.
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang-cpp.so.14", ELF64);
    root.file("usr/lib/llvm-14/lib/libclang.so.1", ELF64);
    root.link("usr/lib/x86_64-linux-gnu/libclang-14.so", "../llvm-14/lib/libclang.so.1");
    let (code, report) = root.check(&[]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("found libclang: ") && report.contains("libclang-14.so"), "{report}");
    assert!(report.contains("nothing to install"), "{report}");
}

#[test]
fn unversioned_libclang_so_is_present() {
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-16/lib/libclang.so", ELF64);
    let (code, report) = root.check(&[]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("found libclang: "), "{report}");
}

#[test]
fn suffix_versioned_only_is_not_linkable() {
    // `libclang.so.1` alone: clang-sys accepts it only when loading at run time, and
    // RocksDB's bindgen links at build time.
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang.so.1", ELF64);
    assert_installs(&root, &[], "libclang-dev");
}

#[test]
fn a_32_bit_or_dangling_libclang_does_not_count() {
    let root = FakeRoot::new();
    root.file("usr/lib/i386-linux-gnu/libclang-14.so", ELF32);
    root.link("usr/lib/llvm-14/lib/libclang.so", "libclang.so.1"); // target missing
    assert_installs(&root, &[], "libclang-dev");
}

#[test]
fn libclang_path_is_the_only_place_searched_when_set() {
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang.so", ELF64);
    root.file("opt/empty/README", b"no libclang here");
    assert_installs(&root, &[("LIBCLANG_PATH", &root.path("opt/empty"))], "libclang-dev");

    root.file("opt/llvm/libclang-17.so", ELF64);
    let (code, report) = root.check(&[("LIBCLANG_PATH", &root.path("opt/llvm"))]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("opt/llvm/libclang-17.so"), "{report}");
}

#[test]
fn llvm_config_prefix_is_searched() {
    let root = FakeRoot::new();
    root.file("opt/llvm-18/lib/libclang.so", ELF64);
    let prefix = root.path("opt/llvm-18");
    root.tool("llvm-config", &format!("echo '{}'", prefix.display()));
    let (code, report) = root.check(&[]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("opt/llvm-18/lib/libclang.so"), "{report}");
}

#[test]
fn compilers_and_protoc_are_judged_by_running_them() {
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang.so", ELF64);
    root.tool("c++", "exit 1"); // e.g. a dangling alternatives link
    assert_installs(&root, &[], "g++");

    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang.so", ELF64);
    fs::remove_file(root.path("bin/cc")).expect("rm cc");
    assert_installs(&root, &[], "gcc");

    // d-engine passes --experimental_allow_proto3_optional: protoc 3.6 is too old.
    let root = FakeRoot::new();
    root.file("usr/lib/llvm-14/lib/libclang.so", ELF64);
    root.tool("protoc", "echo 'libprotoc 3.6.1'");
    assert_installs(&root, &[], "protobuf-compiler");

    // $PROTOC overrides PATH, as in prost-build and protobuf-build.
    root.tool("protoc-new", "echo 'libprotoc 3.21.12'");
    let (code, report) = root.check(&[("PROTOC", &root.path("bin/protoc-new"))]);
    assert_eq!(code, 0, "{report}");
}
