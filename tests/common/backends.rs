//! One test body, every backend: the loop-level twin of [`super::BACKENDS`]
//! (the examples' flags). Adding a backend is one line here.

/// For each body `fn name(lp: Loop)`, generates one `#[test]` per backend,
/// each handing the body a [`selectloop::Loop`] already set to that backend
/// (the body adds its own `.timeout(..)` / `.count(..)`).
#[allow(unused_macros)]
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        mod select {
            $( #[test] fn $name() { super::$name(selectloop::Loop::new().use_poll(false)) } )*
        }
        mod poll {
            $( #[test] fn $name() { super::$name(selectloop::Loop::new().use_poll(true)) } )*
        }
    };
}
