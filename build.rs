//! Build-time platform probe for `selectloop`.
//!
//! What it does, and why:
//!
//! Only what truly differs between the platforms the crate supports, and
//! matters to it, is probed; each probe *compiles* (never links or runs, so
//! cross builds work) a small C file with the target's C compiler. With no
//! C compiler, the target's OS decides.
//!
//! 1. **`cfg(selectloop_msg_nosignal)`**: set where `send(2)` takes
//!    `MSG_NOSIGNAL` (Linux, Android, the BSDs). Elsewhere (Apple targets) the
//!    socket gets `SO_NOSIGPIPE` instead, so a write to a closed peer never
//!    raises SIGPIPE.
//! 2. **`cfg(selectloop_has_eventfd)`**: set where `eventfd(2)` exists. The
//!    probe *compiles* (never runs, so cross builds work) a C file that
//!    includes `<sys/eventfd.h>` and calls `eventfd(0, EFD_CLOEXEC |
//!    EFD_NONBLOCK)`; the cfg is set only if that compiles and `nix` offers
//!    `eventfd` on the target (Linux, Android, FreeBSD). The wake-up
//!    primitive of the daemon sources (`src/sys/wake.rs`: signals, `Waker`,
//!    message channels) is then one eventfd instead of a pipe pair. With no
//!    C compiler, the target's OS decides.
//! 3. **`cfg(selectloop_has_pipe2)`**: set where `pipe2(2)` exists (same
//!    kind of compile probe, with implicit declarations an error), so the
//!    pipe fallback gets its two fds close-on-exec and non-blocking in one
//!    call; elsewhere `pipe(2)` and two `fcntl(2)` calls.
//!
//! Setting `SELECTLOOP_NO_EVENTFD=1` in the build environment leaves both
//! cfgs unset, so the portable pipe + fcntl path is built and tested on a
//! platform that has eventfd: `SELECTLOOP_NO_EVENTFD=1 cargo test`.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo::rustc-check-cfg=cfg(selectloop_msg_nosignal)");
    println!("cargo::rustc-check-cfg=cfg(selectloop_has_eventfd)");
    println!("cargo::rustc-check-cfg=cfg(selectloop_has_pipe2)");

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let os_has_nosignal = matches!(
        os.as_str(),
        "linux"
            | "android"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "dragonfly"
            | "illumos"
            | "solaris"
    );
    let nosignal = probe_compiles(
        "msg_nosignal_probe",
        "#include <sys/socket.h>\nint selectloop_probe(void) { return MSG_NOSIGNAL; }\n",
    )
    .unwrap_or(os_has_nosignal);
    if nosignal {
        println!("cargo:rustc-cfg=selectloop_msg_nosignal");
    }

    // What nix wraps on each target: a probe that succeeds elsewhere cannot
    // be used through it.
    let nix_has_eventfd = matches!(os.as_str(), "linux" | "android" | "freebsd");
    let nix_has_pipe2 = matches!(
        os.as_str(),
        "linux"
            | "android"
            | "freebsd"
            | "dragonfly"
            | "netbsd"
            | "openbsd"
            | "illumos"
            | "solaris"
    );
    let eventfd = probe_compiles(
        "eventfd_probe",
        "#include <sys/eventfd.h>\nint selectloop_probe(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }\n",
    )
    .unwrap_or(nix_has_eventfd);
    println!("cargo:rerun-if-env-changed=SELECTLOOP_NO_EVENTFD");
    let portable_only = env::var_os("SELECTLOOP_NO_EVENTFD").is_some_and(|v| v == "1");
    if eventfd && nix_has_eventfd && !portable_only {
        println!("cargo:rustc-cfg=selectloop_has_eventfd");
    }
    let pipe2 = probe_compiles(
        "pipe2_probe",
        "#define _GNU_SOURCE 1\n#include <unistd.h>\n#include <fcntl.h>\nint selectloop_probe(int *fds) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK); }\n",
    )
    .unwrap_or(nix_has_pipe2);
    if pipe2 && nix_has_pipe2 && !portable_only {
        println!("cargo:rustc-cfg=selectloop_has_pipe2");
    }
}

/// The target C compiler (`CC_<target>`, `CC`, or `cc`).
fn c_compiler() -> String {
    let target = env::var("TARGET").unwrap_or_default();
    env::var(format!("CC_{}", target.replace('-', "_")))
        .or_else(|_| env::var("CC"))
        .unwrap_or_else(|_| "cc".to_string())
}

/// Compiles (`$CC -c`, never links or runs) `code` as a C file: `Some(true)`
/// if it compiles, `Some(false)` if the compiler rejects it, `None` if there
/// is no compiler to ask. Implicit function declarations are errors, so a
/// function the headers do not declare fails the probe.
fn probe_compiles(name: &str, code: &str) -> Option<bool> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR")?);
    let src = out_dir.join(format!("{name}.c"));
    let obj = out_dir.join(format!("{name}.o"));
    std::fs::write(&src, code).ok()?;
    let output = Command::new(c_compiler())
        .arg("-Werror=implicit-function-declaration")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .ok()?;
    Some(output.status.success())
}
