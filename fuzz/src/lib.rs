//! Shared by the fuzz targets: an allocator that turns one oversized allocation into a crash.
//!
//! Built without a sanitizer (`-s none`), libFuzzer cannot see allocations, so its
//! `-malloc_limit_mb` does nothing; this allocator gives the same check. Total memory is
//! still bounded by `-rss_limit_mb`.

use std::alloc::{GlobalAlloc, Layout, System};

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
