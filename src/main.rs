//! The `s3-connector` binary: see `s3-connector --help`.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    s3_connector::cli::main()
}

/// Two malloc arenas instead of glibc's up to eight per core. Each thread that allocates gets
/// an arena of its own, and memory freed in one is not reused by another: after a full sync of
/// 50,000 objects the tokio workers, blocking threads and tantivy's indexing threads had left
/// about 40 MiB of fragmented arenas. With two, that sync's peak RSS went from 120 to 80 MiB at
/// the same speed (docs/worker-and-api.md, "Memory"). `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` in the environment
/// still decide.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    const ARENAS: libc::c_int = 2;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && std::env::var_os("GLIBC_TUNABLES").is_none()
    {
        // SAFETY: first thing in `main`, before any other thread exists; mallopt only sets a
        // parameter of the allocator, and a refusal (it returns 0) leaves glibc's default.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
