//! The `aekit` command: parses arguments and calls the library.

mod cli;

// glibc's malloc returns large tensor buffers to the OS on every free (mmap/munmap), which
// costs burn about a third of its training speed; mimalloc keeps them.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
