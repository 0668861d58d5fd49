//! `cargo xtask release`: builds the `memhost` release binary and checks what the README
//! says of it: stripped (no symbol table, no debug sections), and it runs.

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{cargo, project_root, run};

/// Builds the release binary, then checks it.
pub fn run_check() -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "host", "--bin", "memhost"]))?;
    let binary = project_root().join("target/release/memhost");
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let sections =
        elf_sections(&bytes).with_context(|| format!("{} is not ELF64", binary.display()))?;
    let kept: Vec<&String> = sections
        .iter()
        .filter(|name| *name == ".symtab" || name.starts_with(".debug"))
        .collect();
    ensure!(
        kept.is_empty(),
        "{} is not stripped: it has {kept:?} (`strip = true` in [profile.release])",
        binary.display()
    );
    let version = output(Command::new(&binary).arg("--version"))?;
    ensure!(
        version.starts_with("memhost "),
        "`memhost --version` printed {version:?}"
    );
    println!(
        "{}: {:.1} MB, stripped ({} sections, none of them .symtab or .debug_*); {}",
        binary.display(),
        bytes.len() as f64 / 1e6,
        sections.len(),
        version.trim()
    );
    Ok(())
}

/// The standard output of `cmd`, which must succeed.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The names of the sections of the little-endian ELF64 file `elf`, or `None` when it is not
/// one or its tables do not fit in it.
fn elf_sections(elf: &[u8]) -> Option<Vec<String>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| {
        let v = u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?);
        usize::try_from(v).ok()
    };
    // Magic, 64-bit, little-endian.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let table = u64_at(0x28)?;
    let entry = usize::from(u16_at(0x3A)?);
    let count = usize::from(u16_at(0x3C)?);
    let names_index = usize::from(u16_at(0x3E)?);
    let header = |i: usize| table.checked_add(i.checked_mul(entry)?);
    // A section header: name offset at 0, file offset at 0x18.
    let names = u64_at(header(names_index)?.checked_add(0x18)?)?;
    (0..count)
        .map(|i| {
            let name = usize::try_from(u32_at(header(i)?)?).ok()?;
            let start = names.checked_add(name)?;
            let rest = elf.get(start..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            Some(String::from_utf8_lossy(&rest[..end]).into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader finds the symbol table of this very test binary (built with symbols),
    /// and refuses what is not ELF.
    #[test]
    fn reads_the_sections_of_an_elf_file() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let sections = elf_sections(&me).expect("a test binary is ELF64");
        assert!(sections.iter().any(|s| s == ".symtab"), "{sections:?}");
        assert!(sections.iter().any(|s| s == ".text"), "{sections:?}");
        assert_eq!(elf_sections(b"\x7fELF\x02\x01"), None);
        assert_eq!(elf_sections(b"not elf"), None);
    }
}
