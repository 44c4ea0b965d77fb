//! Finds libllavanext and generates the FFI declarations from its public header with bindgen.
//!
//! Library: `LLAVANEXT_LIBRARY` (the directory holding libllavanext.so, or the file itself) if
//! set, else `pkg-config llavanext` (PKG_CONFIG_PATH may point at a meson build directory's
//! `meson-uninstalled` folder).
//!
//! Header `llavanext/llavanext.h`: `LLAVANEXT_INCLUDE_DIR` if set, else the `-I` directories
//! pkg-config reports, else the compiler's default include path, else (building inside the
//! libllavanext source tree) the tree's own `include/`.

use std::env;
use std::path::{Path, PathBuf};

const HEADER: &str = "llavanext/llavanext.h";

fn main() {
    println!("cargo:rerun-if-env-changed=LLAVANEXT_LIBRARY");
    println!("cargo:rerun-if-env-changed=LLAVANEXT_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let mut include_dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = env::var_os("LLAVANEXT_INCLUDE_DIR") {
        include_dirs.push(PathBuf::from(dir));
    }

    let lib_dir: PathBuf;
    if let Some(lib) = env::var_os("LLAVANEXT_LIBRARY") {
        let lib = PathBuf::from(lib);
        lib_dir = if lib.is_file() { lib.parent().map(Path::to_path_buf).unwrap_or_default() } else { lib };
        if !lib_dir.is_dir() {
            panic!("LLAVANEXT_LIBRARY={} is not a directory holding libllavanext.so", lib_dir.display());
        }
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-lib=dylib=llavanext");
        // pkg-config may still know where the header is; a failure is not an error here.
        if let Ok(lib) = pkg_config::Config::new().cargo_metadata(false).probe("llavanext") {
            include_dirs.extend(lib.include_paths);
        }
    } else {
        let lib = pkg_config::Config::new().atleast_version("0.1.0").probe("llavanext").unwrap_or_else(|e| {
            panic!(
                "libllavanext not found: set LLAVANEXT_LIBRARY to the directory of \
                     libllavanext.so, or make `pkg-config llavanext` work (for a meson build \
                     directory BUILD: PKG_CONFIG_PATH=BUILD/meson-uninstalled).\n{e}"
            )
        });
        lib_dir = lib
            .link_paths
            .iter()
            .find(|d| has_library(d))
            .cloned()
            .or_else(|| lib.link_paths.first().cloned())
            .unwrap_or_default();
        include_dirs.extend(lib.include_paths);
    }
    // Dependent crates read this as DEP_LLAVANEXT_LIBDIR (e.g. for an rpath in their tests).
    println!("cargo:libdir={}", lib_dir.display());
    if !lib_dir.as_os_str().is_empty() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    }

    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../include");
    let header_dir = include_dirs
        .iter()
        .find(|d| d.join(HEADER).is_file())
        .cloned()
        .or_else(|| {
            ["/usr/local/include", "/usr/include"]
                .iter()
                .map(PathBuf::from)
                .find(|d| d.join(HEADER).is_file())
        })
        .or_else(|| Some(in_tree).filter(|d| d.join(HEADER).is_file()))
        .unwrap_or_else(|| {
            panic!("{HEADER} not found; set LLAVANEXT_INCLUDE_DIR to the directory holding llavanext/")
        });
    println!("cargo:include={}", header_dir.display());
    println!("cargo:rerun-if-changed={}", header_dir.join(HEADER).display());
    println!("cargo:rerun-if-changed={}", header_dir.join("llavanext/version.h").display());

    let bindings = bindgen::Builder::default()
        .header(header_dir.join(HEADER).to_string_lossy())
        .clang_arg(format!("-I{}", header_dir.display()))
        .allowlist_function("llavanext_.*")
        .allowlist_type("llavanext_.*")
        .allowlist_var("LLAVANEXT_.*")
        // Status codes and the like are int32_t in signatures: plain integer constants.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .layout_tests(true)
        .derive_default(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on llavanext.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("cannot write bindings.rs");
}

fn has_library(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libllavanext.so"))
        })
        .unwrap_or(false)
}
