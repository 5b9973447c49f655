//! The README's two commands are the ones that work: its first shell block runs the platform,
//! its second runs the whole suite, and CI runs exactly that second command.

use std::path::Path;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)).unwrap()
}

/// The commands of the README's first `sh` blocks, in order, comments and blank lines left out.
fn readme_commands() -> Vec<String> {
    let readme = repo_file("README.md");
    readme
        .split("```sh\n")
        .skip(1)
        .map(|block| {
            let block = block.split("```").next().unwrap();
            block
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn ci_runs_the_readmes_test_command() {
    let commands = readme_commands();
    assert_eq!(
        commands[0], "./scripts/run-local.sh",
        "the first command runs the platform"
    );
    assert_eq!(
        commands[1], "./scripts/test",
        "the second command runs the tests"
    );
    let ci = repo_file(".ci/run");
    let last = ci
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap();
    assert_eq!(
        last, "exec ./scripts/test",
        ".ci/run must run exactly the README's command"
    );
}
