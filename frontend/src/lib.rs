//! The browser entry point for Leptos hydration, built only for wasm32
//! (`cargo build -p frontend --target wasm32-unknown-unknown`). Host builds compile nothing
//! here, so the server never unifies `hydrate` with `ssr`. The server does not serve a wasm
//! bundle yet; every page works without it.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
