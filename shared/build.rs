//! Compiles every rendition profile in `job-templates/renditions/` into the crate, so that adding
//! a profile is adding its data file: `src/profiles.rs` includes the table written here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let profiles_dir = manifest_dir.join("../job-templates/renditions");
    // A directory here makes cargo rerun this script when any file in it is added, removed or
    // changed.
    println!("cargo:rerun-if-changed={}", profiles_dir.display());

    let mut profiles: Vec<(String, PathBuf)> = fs::read_dir(&profiles_dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", profiles_dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| (profile_name(&path), path))
        .collect();
    assert!(!profiles.is_empty(), "no profile in {}", profiles_dir.display());
    // Smallest first (480p before 1080p), as a reader would list them.
    profiles.sort_by_key(|(name, _)| (leading_number(name), name.clone()));

    let mut table = String::from("/// The profiles in `job-templates/renditions/`, smallest first.\n");
    table.push_str("pub const BUILT_IN: &[(&str, &str)] = &[\n");
    for (name, path) in &profiles {
        let path = path.canonicalize().expect("an existing profile file");
        writeln!(table, "    ({name:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    table.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("built_in_profiles.rs");
    fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// The file's stem: `720p.json` is the profile `720p`.
fn profile_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_else(|| panic!("{} is not a UTF-8 file name", path.display()))
        .to_owned()
}

fn leading_number(name: &str) -> u32 {
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(u32::MAX)
}
