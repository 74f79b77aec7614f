//! Embed `git describe` in the binary (the original derives its version
//! from tags the same way). Falls back to "unknown" outside a git checkout.

use std::process::Command;

fn main() {
    let describe = std::env::var("BDC_GIT_DESCRIBE").ok().or_else(|| {
        Command::new("git")
            .args(["describe", "--tags", "--always", "--dirty"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    });
    println!(
        "cargo:rustc-env=BDC_GIT_DESCRIBE={}",
        describe.unwrap_or_else(|| "unknown".to_owned())
    );
    println!("cargo:rerun-if-env-changed=BDC_GIT_DESCRIBE");
    for path in [
        "../../.git/HEAD",
        "../../.git/refs/tags",
        "../../.git/refs/heads",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
