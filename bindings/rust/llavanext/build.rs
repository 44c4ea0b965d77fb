//! Lets this crate's own tests and examples run without LD_LIBRARY_PATH: they get an rpath to
//! the directory llavanext-sys found libllavanext in. Crates depending on `llavanext` are not
//! affected (their binaries find the library the usual way).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAVANEXT_LIBDIR");
    if let Ok(dir) = std::env::var("DEP_LLAVANEXT_LIBDIR") {
        if !dir.is_empty() {
            // Package-local: applies to this crate's tests and examples, not to dependents.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
}
