//! Preflight of a plugin file before `dlopen`, which would run the library's
//! init code: a wrong file is refused without executing any of it.

use object::elf;
use object::read::elf::{Dyn, ElfFile64, FileHeader};
use object::{Endianness, Object, ObjectSymbol};

/// Why a file is not a loadable plugin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfProblem {
    #[error("is not an ELF file (it starts with {magic:02x?}); a plugin is a shared library (.so) built from a cdylib crate")]
    NotElf { magic: Vec<u8> },
    #[error("is an ELF file for {found}, but this host runs on {expected}; build the plugin for this machine (cargo build without --target, or --target {expected_triple})")]
    WrongArchitecture {
        found: String,
        expected: String,
        expected_triple: &'static str,
    },
    #[error("is an executable program, not a shared library; point --plugin at the library (lib*.so) of a crate with crate-type = [\"cdylib\"]")]
    Executable,
    #[error("is an ELF file of type {0}, not a shared library; build the plugin crate with crate-type = [\"cdylib\"]")]
    NotSharedLibrary(String),
    #[error("is a shared library without the demo-host root module (no `{symbol}` symbol); the plugin must call `plugin_api::export_subject!(YourSubject)`")]
    NoRootModule { symbol: String },
    #[error("could not be parsed as ELF: {0}")]
    Malformed(String),
}

/// Checks magic, class, architecture and type, and that the root module symbol is exported.
pub fn check(bytes: &[u8]) -> Result<(), ElfProblem> {
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(ElfProblem::NotElf {
            magic: bytes.iter().take(4).copied().collect(),
        });
    }
    if bytes.len() < 20 || bytes[4] != elf::ELFCLASS64 {
        let found = match bytes.get(4) {
            Some(&elf::ELFCLASS32) => "a 32-bit machine".to_string(),
            _ => "an unknown class".to_string(),
        };
        return Err(wrong_arch(found));
    }
    let file =
        ElfFile64::<Endianness>::parse(bytes).map_err(|e| ElfProblem::Malformed(e.to_string()))?;
    let header = file.elf_header();
    let endian = file.endian();
    let machine = header.e_machine(endian);
    if machine != host_machine() {
        return Err(wrong_arch(machine_name(machine)));
    }
    match header.e_type(endian) {
        elf::ET_DYN => {}
        elf::ET_EXEC => return Err(ElfProblem::Executable),
        other => return Err(ElfProblem::NotSharedLibrary(type_name(other))),
    }
    // A PIE executable is ET_DYN too, marked DF_1_PIE by the linker. (A program
    // interpreter alone proves nothing: glibc's libc.so.6 has one and is a library.)
    if is_pie(&file) {
        return Err(ElfProblem::Executable);
    }
    let symbol = abi_stable::library::ROOT_MODULE_LOADER_NAME;
    let exported = file
        .dynamic_symbols()
        .any(|s| s.name().is_ok_and(|n| n == symbol) && !s.is_undefined());
    if !exported {
        return Err(ElfProblem::NoRootModule {
            symbol: symbol.to_string(),
        });
    }
    Ok(())
}

fn is_pie(file: &ElfFile64<Endianness>) -> bool {
    let endian = file.endian();
    let Ok(sections) = file.elf_header().sections(endian, file.data()) else {
        return false;
    };
    let Ok(Some((dynamic, _))) = sections.dynamic(endian, file.data()) else {
        return false;
    };
    dynamic.iter().any(|d| {
        d.d_tag(endian) == u64::from(elf::DT_FLAGS_1)
            && d.d_val(endian) & u64::from(elf::DF_1_PIE) != 0
    })
}

fn wrong_arch(found: String) -> ElfProblem {
    ElfProblem::WrongArchitecture {
        found,
        expected: machine_name(host_machine()),
        expected_triple: host_triple(),
    }
}

fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86_64" => elf::EM_X86_64,
        "aarch64" => elf::EM_AARCH64,
        "riscv64" => elf::EM_RISCV,
        "powerpc64" => elf::EM_PPC64,
        "s390x" => elf::EM_S390,
        _ => elf::EM_NONE,
    }
}

fn host_triple() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        "riscv64" => "riscv64gc-unknown-linux-gnu",
        _ => "the host's own target",
    }
}

fn machine_name(machine: u16) -> String {
    match machine {
        elf::EM_X86_64 => "x86-64".into(),
        elf::EM_AARCH64 => "aarch64 (arm64)".into(),
        elf::EM_386 => "x86 (32-bit)".into(),
        elf::EM_ARM => "arm (32-bit)".into(),
        elf::EM_RISCV => "riscv".into(),
        elf::EM_PPC64 => "powerpc64".into(),
        elf::EM_S390 => "s390x".into(),
        other => format!("machine type {other}"),
    }
}

fn type_name(t: u16) -> String {
    match t {
        elf::ET_REL => "relocatable object (.o)".into(),
        elf::ET_CORE => "core dump".into(),
        other => format!("{other}"),
    }
}
