//! The test world of the canonical ABI (`wit/guest.wit`), in Rust with wit-bindgen: what a
//! guest written the way the ecosystem writes them looks like to the host. Built for
//! `wasm32-unknown-unknown` by `cargo xtask build-guest` into
//! `target/guest/canonical.wasm`; natively the crate is empty (nothing to export).

/// Where the first `\n` of `bytes` is: eight bytes at a time, since a loop over bytes costs
/// a metered branch a byte in Wasm (what `transform-chunk` spends most of its time on).
pub fn newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let mut le = [0; 8];
        le.copy_from_slice(word);
        // A zero byte where `word` holds a newline; the lowest flagged byte is exact.
        let x = u64::from_le_bytes(le) ^ NEWLINES;
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::newline;

    #[test]
    fn newline_is_found_wherever_it_is() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes: Vec<u8> = (0..len)
                    .map(|i| b'a' + u8::try_from(i % 26).unwrap())
                    .collect();
                // Bytes that look like a newline to a careless word trick: 0x0b, 0x8a.
                if len > 2 {
                    bytes[0] = 0x0b;
                    bytes[len - 1] = 0x8a;
                }
                if at < len {
                    bytes[at] = b'\n';
                }
                let want = bytes.iter().position(|&b| b == b'\n');
                assert_eq!(newline(&bytes), want, "{len} {at}");
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod exports {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "guest",
    });

    use exports::memhost::test::text;

    struct Component;

    impl Guest for Component {
        fn checked(s: String) -> String {
            if let Some(message) = s.strip_prefix("panic:") {
                panic!("{message}");
            }
            s
        }

        fn transform(s: String) -> String {
            s + " Wasm is cool!"
        }

        fn reverse(mut b: Vec<u8>) -> Vec<u8> {
            b.reverse();
            b
        }

        fn transform_lines(lines: Vec<String>) -> Vec<String> {
            lines.into_iter().map(Self::transform).collect()
        }

        fn reverse_lines(lines: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
            lines.into_iter().map(Self::reverse).collect()
        }

        fn transform_chunk(chunk: String) -> String {
            const SUFFIX: &str = " Wasm is cool!";
            let mut out = String::with_capacity(chunk.len() + chunk.len() / 4 + SUFFIX.len());
            let mut rest = chunk.as_str();
            while let Some(i) = crate::newline(rest.as_bytes()) {
                // `\n` is ASCII: `i` is a char boundary.
                out.push_str(&rest[..i]);
                out.push_str(SUFFIX);
                out.push('\n');
                rest = &rest[i + 1..];
            }
            if !rest.is_empty() {
                out.push_str(rest);
                out.push_str(SUFFIX);
            }
            out
        }

        fn reverse_chunk(mut chunk: Vec<u8>) -> Vec<u8> {
            for line in chunk.split_mut(|&b| b == b'\n') {
                line.reverse();
            }
            chunk
        }

        fn drop_last(lines: Vec<String>) -> Vec<String> {
            let lose = lines.iter().any(|l| l == "drop");
            let mut out = Self::transform_lines(lines);
            if lose {
                out.pop();
            }
            out
        }

        fn dup_last(lines: Vec<String>) -> Vec<String> {
            let repeat = lines.iter().any(|l| l == "dup");
            let mut out = Self::transform_lines(lines);
            if repeat && let Some(last) = out.last().cloned() {
                out.push(last);
            }
            out
        }

        fn words(s: String) -> Vec<String> {
            s.split(' ')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        }

        fn join(parts: Vec<String>, sep: String) -> String {
            parts.join(&sep)
        }

        #[allow(clippy::too_many_arguments)]
        fn scalars(
            a: bool,
            b: i8,
            c: u8,
            d: i16,
            e: u16,
            f: i32,
            g: u32,
            h: i64,
            i: u64,
            j: f32,
            k: f64,
            l: char,
        ) -> (bool, i8, u8, i16, u16, i32, u32, i64, u64, f32, f64, char) {
            (a, b, c, d, e, f, g, h, i, j, k, l)
        }

        #[allow(clippy::too_many_arguments, clippy::many_single_char_names)]
        fn sum17(
            a: u32,
            b: u32,
            c: u32,
            d: u32,
            e: u32,
            f: u32,
            g: u32,
            h: u32,
            i: u32,
            j: u32,
            k: u32,
            l: u32,
            m: u32,
            n: u32,
            o: u32,
            p: u32,
            q: u32,
        ) -> u64 {
            [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q]
                .iter()
                .map(|&x| u64::from(x))
                .sum()
        }

        fn move_point(p: Point, dx: i32, dy: i32) -> Point {
            Point {
                x: p.x.wrapping_add(dx),
                y: p.y.wrapping_add(dy),
                label: p.label + "'",
            }
        }

        fn area(s: Shape) -> f64 {
            match s {
                Shape::Circle(r) => core::f64::consts::PI * f64::from(r) * f64::from(r),
                Shape::Rect((w, h)) => f64::from(w) * f64::from(h),
                Shape::Dot => 0.0,
                Shape::Named(name) => name.len() as f64,
            }
        }

        fn shapes(n: u32) -> Vec<Shape> {
            (0..n)
                .map(|i| match i % 4 {
                    0 => Shape::Circle(i as f32),
                    1 => Shape::Rect((i, i + 1)),
                    2 => Shape::Dot,
                    _ => Shape::Named(format!("shape {i}")),
                })
                .collect()
        }

        fn next_color(c: Color) -> Color {
            match c {
                Color::Red => Color::Green,
                Color::Green => Color::Blue,
                Color::Blue => Color::Red,
            }
        }

        fn flip(p: Perms) -> Perms {
            Perms::all() - p
        }

        fn find(haystack: Vec<String>, needle: String) -> Option<u32> {
            haystack.iter().position(|s| *s == needle).map(|i| i as u32)
        }

        fn parse(s: String) -> Result<i64, String> {
            s.trim().parse().map_err(|e| format!("{s:?}: {e}"))
        }

        fn nested(o: Option<Option<String>>) -> Option<Option<String>> {
            o
        }

        fn check(ok: bool) -> Result<(), String> {
            if ok { Ok(()) } else { Err("not ok".into()) }
        }

        fn nothing() {}

        fn aliases(
            a: String,
            b: u64,
            c: i64,
            d: f32,
            e: f64,
            f: char,
        ) -> (String, u64, i64, f32, f64, char) {
            (a, b, c, d, e, f)
        }

        fn alias_result(s: String) -> String {
            s + "!"
        }
    }

    impl text::Guest for Component {
        fn upper(s: String) -> String {
            s.to_uppercase()
        }

        fn count(s: String) -> u32 {
            s.chars().count() as u32
        }
    }

    export!(Component);
}
