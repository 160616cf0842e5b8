//! Running the `snowcast` binary from integration tests.

use std::{path::Path, process::Command};

/// `snowcast convert CSV --tenant TENANT --dataset sales --out OUT`, ready for more args.
pub fn convert_command(tenant: &str, csv: &Path, out: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_snowcast"));
    command
        .args(["convert", csv.to_str().unwrap(), "--tenant", tenant])
        .args(["--dataset", "sales", "--out", out.to_str().unwrap()]);
    command
}
