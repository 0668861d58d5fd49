//! A plugin: a guest whose WIT world (`wit/plugin`) imports functions from the program
//! that runs it, in Rust with wit-bindgen, as the ecosystem writes them. Built for
//! `wasm32-unknown-unknown` by `cargo xtask build-guest --all` into
//! `target/guest/plugin.wasm`; natively the crate holds only its logic, tested here.

/// The greeting for `name`.
pub fn greeting(greeting: Option<&str>, name: &str) -> String {
    format!("{}, {name}!", greeting.unwrap_or("Hello"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_greeting_falls_back_to_hello() {
        assert_eq!(super::greeting(None, "Ada"), "Hello, Ada!");
        assert_eq!(super::greeting(Some("Hi"), "Ada"), "Hi, Ada!");
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    wit_bindgen::generate!({
        path: "../../wit/plugin",
        world: "plugin",
    });

    use memhost::plugin::config;

    struct Plugin;

    impl Guest for Plugin {
        fn greet(name: String) -> String {
            let greeting = config::get("greeting");
            let line = crate::greeting(greeting.as_deref(), &name);
            log(&Entry {
                level: Level::Info,
                message: line.clone(),
                fields: vec![("name".into(), name)],
            });
            line
        }

        fn each(items: Vec<String>) -> Vec<String> {
            callback(&items).into_iter().map(|s| s + "!").collect()
        }

        fn map(values: Vec<i64>) -> Vec<i64> {
            scale(&values)
                .into_iter()
                .map(|v| v.wrapping_mul(2))
                .collect()
        }

        fn relay(s: String) -> String {
            shout(&s)
        }

        fn wide_call(s: String) -> (String, u64) {
            wide(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, &s)
        }

        fn attempt(ok: bool) -> Result<String, String> {
            fallible(ok)
        }
    }

    export!(Plugin);
}
