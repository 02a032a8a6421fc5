//! The `glasslog` binary; everything is in the library's [`glasslog::cli`].

/// mimalloc rather than glibc's malloc: parsing declarations (admission, audit, monitor)
/// allocates for every JSON member, and glibc's malloc took a quarter of the monitor's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    glasslog::cli::main()
}
