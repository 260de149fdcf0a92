//! The `aekit` command: parses arguments and calls the library.

mod cli;

// glibc's malloc returns large tensor buffers to the OS on every free (mmap/munmap), which
// costs burn about a third of its training speed; mimalloc keeps them.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so `aekit eval RUN | head` would panic on the closed pipe; end
    // quietly instead, as Unix tools do.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
