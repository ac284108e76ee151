//! taskdef-register: register task definitions exactly as written.
//! (Filled in by the taskdef-register issue.)
