//! The `glasslog` binary; everything is in the library's [`glasslog::cli`].

fn main() -> std::process::ExitCode {
    glasslog::cli::main()
}
