//! Shared by the fuzz targets: an allocator that turns one oversized allocation into a crash,
//! and the panic hook of the extraction targets.
//!
//! Built without a sanitizer (`-s none`), libFuzzer cannot see allocations, so its
//! `-malloc_limit_mb` does nothing; this allocator gives the same check. Total memory is
//! still bounded by `-rss_limit_mb`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Once;

/// The largest single allocation allowed: 1 GiB, libFuzzer's `-malloc_limit_mb=1024`.
pub const MAX_ALLOCATION: usize = 1 << 30;

/// The system allocator, aborting on any allocation larger than [`MAX_ALLOCATION`].
pub struct Limited;

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No formatting that could allocate: we are inside the allocator.
        eprintln!("==fuzz== out-of-memory: single allocation of {size} bytes");
        std::process::abort();
    }
}

// SAFETY: every call is forwarded unchanged to `System`; only the size is looked at first.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Installs [`Limited`] as the target's global allocator.
#[macro_export]
macro_rules! limit_allocations {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::Limited = $crate::Limited;
    };
}

/// Lets a panic raised inside pdf-extract unwind to `src/extract/pdf.rs`, which reports it as a
/// corrupt PDF; every other panic still reaches libFuzzer's hook, which aborts (a crash).
/// libfuzzer-sys aborts on every panic, caught or not, so without this the PDF target would stop
/// at pdf-extract's first `expect` on every run.
pub fn contain_pdf_extract_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_pdf_extract = info
                .location()
                .is_some_and(|location| location.file().contains("/pdf-extract-"));
            if !in_pdf_extract {
                abort(info);
            }
        }));
    });
}
