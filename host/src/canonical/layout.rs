//! The canonical ABI's tables for a WIT type: its size and alignment in linear memory, how
//! many flat core values it takes, and whether this host supports it. (The spec's
//! "Alignment", "Element Size" and "Flattening" sections.)

use std::sync::Arc;

use super::ty::AsType;
use wit_parser::{Resolve, Type, TypeDefKind};

/// The most flat core values a function's parameters may take before they go through
/// memory.
pub(crate) const MAX_FLAT_PARAMS: usize = 16;
/// The most flat core values a function's result may take before it goes through memory.
pub(crate) const MAX_FLAT_RESULTS: usize = 1;
/// The longest string the canonical ABI lets a guest hand over, in bytes (UTF-8).
pub(crate) const MAX_STRING_BYTES: u32 = (1 << 31) - 1;
/// The most labels a `flags` type may have.
pub(crate) const MAX_FLAGS: usize = 32;

/// A core value type of the flat form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flat {
    I32,
    I64,
    F32,
    F64,
}

impl Flat {
    /// The name the Wasm text format uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flat::I32 => "i32",
            Flat::I64 => "i64",
            Flat::F32 => "f32",
            Flat::F64 => "f64",
        }
    }

    /// The spec's `join` of two flat types at the same place of a variant's cases.
    fn join(self, other: Flat) -> Flat {
        match (self, other) {
            (a, b) if a == b => a,
            (Flat::I32, Flat::F32) | (Flat::F32, Flat::I32) => Flat::I32,
            _ => Flat::I64,
        }
    }
}

impl std::fmt::Display for Flat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The type `ty` names, past aliases (`type a = b`).
pub(crate) fn kind(resolve: &Resolve, ty: impl AsType) -> Option<&TypeDefKind> {
    match unalias(resolve, ty) {
        Type::Id(id) => Some(&resolve.types[id].kind),
        _ => None,
    }
}

/// `ty` past aliases: the type it names.
pub(crate) fn unalias(resolve: &Resolve, ty: impl AsType) -> Type {
    let mut ty = ty.wit();
    while let Type::Id(id) = ty
        && let TypeDefKind::Type(inner) = &resolve.types[id].kind
    {
        ty = *inner;
    }
    ty
}

/// The payload type of case `case` of a variant-shaped kind, if it has one: one index, no
/// walk over the cases.
pub(crate) fn case_payload(kind: &TypeDefKind, case: usize) -> Option<&Type> {
    match kind {
        TypeDefKind::Variant(v) => v.cases.get(case).and_then(|c| c.ty.as_ref()),
        TypeDefKind::Option(t) if case == 1 => Some(t),
        TypeDefKind::Result(r) if case == 0 => r.ok.as_ref(),
        TypeDefKind::Result(r) if case == 1 => r.err.as_ref(),
        _ => None,
    }
}

/// The size in bytes of a variant's discriminant with `cases` cases.
pub(crate) fn discriminant_size(cases: usize) -> u32 {
    match cases {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

/// `n` rounded up to a multiple of `align` (a power of two).
pub(crate) fn align_to(n: u32, align: u32) -> u32 {
    n.div_ceil(align) * align
}

/// [`align_to`] in 64 bits, for sizes not yet known to fit in 32.
fn align_to_64(n: u64, align: u32) -> u64 {
    n.div_ceil(u64::from(align)) * u64::from(align)
}

/// The most levels a type may nest: `list<list<u8>>` has 3. (wasmparser's limit on a
/// component's types is the same.)
pub const MAX_TYPE_DEPTH: u32 = 100;
/// The most parts a type may have, counted as a tree: each field, case payload and
/// element type once for every place it appears, so that a type that names another twice
/// counts it twice. (wasmparser's limit on a component's types is the same.) A type that
/// names itself twice at every level would otherwise double at each.
pub const MAX_TYPE_SIZE: u32 = 1_000_000;
/// The most fields a record or tuple may have, and the most cases of a variant or enum.
/// (wasmparser's limit on a component's types is the same.)
pub const MAX_TYPE_WIDTH: usize = 10_000;
/// The flat types kept for each type: one more than a function's parameters may take
/// flat, since past that only their number matters.
const FLATS_KEPT: usize = MAX_FLAT_PARAMS + 1;

/// What the canonical ABI needs of one type, worked out once, at admission: every lift and
/// lower reads it here rather than walking the WIT type again.
#[derive(Debug, Clone)]
pub(crate) struct Info {
    /// Size and alignment in linear memory.
    pub(crate) size: u32,
    pub(crate) align: u32,
    /// The first [`FLATS_KEPT`] of its flat types, and how many there are in all
    /// (saturating).
    flats: Vec<Flat>,
    flat_count: u32,
    /// Whether its values hold strings or lists, which live in linear memory.
    pub(crate) uses_memory: bool,
    /// Levels of nesting, itself included, and parts as a tree.
    height: u32,
    parts: u32,
    /// What lifting and lowering need beyond size: field offsets, or the cases' layout.
    pub(crate) shape: Shape,
}

/// The layout of a type's parts.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    /// A scalar, a string, a list, flags: nothing beyond the size.
    Leaf,
    /// A record's or tuple's fields: each one's offset, in order.
    Fields(Box<[u32]>),
    /// A variant, enum, option or result: its cases.
    Cases(Cases),
}

/// The layout of a variant-shaped type's cases.
#[derive(Debug, Clone)]
pub(crate) struct Cases {
    /// Bytes of the discriminant in memory.
    pub(crate) disc: u32,
    /// Where every case's payload starts, after the discriminant.
    pub(crate) payload: u32,
    /// The flat places after the discriminant: the most any case takes.
    pub(crate) width: u32,
    /// How many of those places each case takes.
    pub(crate) widths: Box<[u32]>,
}

impl Info {
    /// The flat types, when there are no more than a function's parameters may take flat
    /// (else the first of them).
    pub(crate) fn flats(&self) -> &[Flat] {
        &self.flats
    }

    /// How many flat values it takes (saturating at `u32::MAX`).
    pub(crate) fn flat_count(&self) -> u32 {
        self.flat_count
    }

    /// The layout of its cases, if it is variant-shaped.
    pub(crate) fn cases(&self) -> Option<&Cases> {
        match &self.shape {
            Shape::Cases(c) => Some(c),
            _ => None,
        }
    }

    /// Its fields' offsets, if it is a record or tuple.
    pub(crate) fn offsets(&self) -> Option<&[u32]> {
        match &self.shape {
            Shape::Fields(o) => Some(o),
            _ => None,
        }
    }

    /// A scalar, string or list: `size` bytes, aligned to `size` (8 and 4 for a string or
    /// list), and `flats`.
    fn leaf(size: u32, align: u32, flats: &[Flat], uses_memory: bool) -> Info {
        Info {
            size,
            align,
            flats: flats.to_vec(),
            flat_count: u32::try_from(flats.len()).unwrap_or(u32::MAX),
            uses_memory,
            height: 1,
            parts: 1,
            shape: Shape::Leaf,
        }
    }
}

/// What the table holds for one type of the `Resolve`.
#[derive(Debug, Clone)]
enum Slot {
    /// A type defined here: a record, a list...
    Def(Info),
    /// An alias: the type it names at the end of the chain, a primitive or a [`Slot::Def`].
    Same(Type),
    /// A type this host does not pass, and why: one sentence, shared by every type that
    /// holds it.
    Refused(Arc<str>),
}

/// The table of every type of a world, compiled once: sizes, alignments, flat types, field
/// offsets and case layouts, aliases resolved, and the types this host refuses with their
/// reasons. Built in one pass over the `Resolve`'s types, which are in topological order
/// (each type's parts come before it), so the work is linear in the types' definitions
/// and no type is walked twice, however often it is named.
#[derive(Debug, Clone)]
pub(crate) struct Types {
    ids: Vec<Slot>,
    /// The primitive types' layouts, by [`primitive`].
    primitives: Box<[Info]>,
}

/// The primitive types, in the order of [`Types::primitives`].
const PRIMITIVES: [Type; 14] = [
    Type::Bool,
    Type::U8,
    Type::S8,
    Type::U16,
    Type::S16,
    Type::U32,
    Type::S32,
    Type::Char,
    Type::U64,
    Type::S64,
    Type::F32,
    Type::F64,
    Type::String,
    Type::ErrorContext,
];

/// Where a primitive type's layout sits in [`Types::primitives`].
fn primitive(ty: &Type) -> Option<usize> {
    PRIMITIVES.iter().position(|p| p == ty)
}

impl Types {
    /// Compiles every type of `resolve`.
    pub(crate) fn compile(resolve: &Resolve) -> Types {
        let primitives = PRIMITIVES
            .iter()
            .map(|ty| match ty {
                Type::Bool | Type::U8 | Type::S8 => Info::leaf(1, 1, &[Flat::I32], false),
                Type::U16 | Type::S16 => Info::leaf(2, 2, &[Flat::I32], false),
                Type::U64 | Type::S64 => Info::leaf(8, 8, &[Flat::I64], false),
                Type::F32 => Info::leaf(4, 4, &[Flat::F32], false),
                Type::F64 => Info::leaf(8, 8, &[Flat::F64], false),
                Type::String => Info::leaf(8, 4, &[Flat::I32, Flat::I32], true),
                // u32, s32, char; error-context is refused before its layout is read.
                _ => Info::leaf(4, 4, &[Flat::I32], false),
            })
            .collect();
        let mut types = Types {
            ids: Vec::with_capacity(resolve.types.len()),
            primitives,
        };
        for (id, def) in resolve.types.iter() {
            let slot = if id.index() == types.ids.len() {
                types.slot(&def.kind)
            } else {
                Slot::Refused("a type out of the order its definitions need".into())
            };
            types.ids.push(slot);
        }
        types
    }

    /// The layout of `ty`, or why this host refuses it.
    pub(crate) fn get(&self, ty: impl AsType) -> Result<&Info, &str> {
        let ty = &ty.wit();
        match ty {
            Type::ErrorContext => {
                Err("`error-context` (an async value, which this host does not run)")
            }
            Type::Id(id) => match self.ids.get(id.index()) {
                Some(Slot::Def(info)) => Ok(info),
                Some(Slot::Same(ty)) => self.get(ty),
                Some(Slot::Refused(why)) => Err(why),
                None => Err("a type defined after its use"),
            },
            _ => primitive(ty)
                .and_then(|i| self.primitives.get(i))
                .ok_or("an unknown type"),
        }
    }

    /// `ty` past aliases, in one step.
    pub(crate) fn unalias(&self, ty: impl AsType) -> Type {
        let ty = &ty.wit();
        match ty {
            Type::Id(id) => match self.ids.get(id.index()) {
                Some(Slot::Same(ty)) => *ty,
                _ => *ty,
            },
            _ => *ty,
        }
    }

    /// The slot of a type defined as `kind`, its parts already compiled.
    fn slot(&self, kind: &TypeDefKind) -> Slot {
        let width = match kind {
            TypeDefKind::Record(r) => Some(("a record of", r.fields.len(), "fields")),
            TypeDefKind::Tuple(t) => Some(("a tuple of", t.types.len(), "types")),
            TypeDefKind::Variant(v) => Some(("a variant of", v.cases.len(), "cases")),
            TypeDefKind::Enum(e) => Some(("an enum of", e.cases.len(), "cases")),
            _ => None,
        };
        if let Some((what, n, parts)) = width
            && n > MAX_TYPE_WIDTH
        {
            return Slot::Refused(format!("{what} {n} {parts} (at most {MAX_TYPE_WIDTH})").into());
        }
        let made = match kind {
            TypeDefKind::Type(inner) => {
                return match self.get(inner) {
                    Ok(_) => Slot::Same(self.unalias(inner)),
                    Err(why) => Slot::Refused(why.into()),
                };
            }
            TypeDefKind::Record(r) => self.fields(r.fields.iter().map(|f| &f.ty)),
            TypeDefKind::Tuple(t) => self.fields(t.types.iter()),
            TypeDefKind::Variant(v) => {
                self.cases(v.cases.len(), v.cases.iter().map(|c| c.ty.as_ref()))
            }
            TypeDefKind::Enum(e) => self.cases(e.cases.len(), e.cases.iter().map(|_| None)),
            TypeDefKind::Option(t) => self.cases(2, [None, Some(t)].into_iter()),
            TypeDefKind::Result(r) => self.cases(2, [r.ok.as_ref(), r.err.as_ref()].into_iter()),
            TypeDefKind::List(elem) => self.get(elem).map_err(Arc::from).map(|e| Info {
                height: e.height.saturating_add(1),
                parts: e.parts.saturating_add(1),
                ..Info::leaf(8, 4, &[Flat::I32, Flat::I32], true)
            }),
            TypeDefKind::Flags(f) if f.flags.len() > MAX_FLAGS => Err(format!(
                "`flags` with {} labels (the canonical ABI allows at most {MAX_FLAGS})",
                f.flags.len()
            )
            .into()),
            TypeDefKind::Flags(f) => Ok(match f.flags.len() {
                0..=8 => Info::leaf(1, 1, &[Flat::I32], false),
                9..=16 => Info::leaf(2, 2, &[Flat::I32], false),
                _ => Info::leaf(4, 4, &[Flat::I32], false),
            }),
            TypeDefKind::Resource | TypeDefKind::Handle(_) => Err(
                "a resource (`own`/`borrow` handles need a component runtime's handle tables)"
                    .into(),
            ),
            TypeDefKind::Future(_) => Err("`future` (async, which this host does not run)".into()),
            TypeDefKind::Stream(_) => Err("`stream` (async, which this host does not run)".into()),
            TypeDefKind::Map(..) => {
                Err("`map` (not yet in the canonical ABI this host follows)".into())
            }
            TypeDefKind::FixedLengthList(..) => {
                Err("a fixed-length list (a gated feature this host does not follow)".into())
            }
            TypeDefKind::Unknown => Err("an unknown type".into()),
        };
        match made.and_then(bounded) {
            Ok(info) => Slot::Def(info),
            Err(why) => Slot::Refused(why),
        }
    }

    /// A record or tuple of `fields`: the spec's layout, each field aligned in turn.
    pub(crate) fn fields<'a>(
        &self,
        fields: impl Iterator<Item = &'a Type>,
    ) -> Result<Info, Arc<str>> {
        let (mut size, mut align) = (0u64, 1);
        let mut offsets = Vec::new();
        let mut flats = Vec::new();
        let (mut flat_count, mut uses_memory, mut height, mut parts) = (0u32, false, 1u32, 1u32);
        for ty in fields {
            let f = self.get(ty)?;
            size = align_to_64(size, f.align);
            offsets.push(u32::try_from(size).map_err(|_| too_large())?);
            size += u64::from(f.size);
            align = align.max(f.align);
            let room = FLATS_KEPT.saturating_sub(flats.len());
            flats.extend(f.flats.iter().take(room));
            flat_count = flat_count.saturating_add(f.flat_count);
            uses_memory |= f.uses_memory;
            height = height.max(f.height.saturating_add(1));
            parts = parts.saturating_add(f.parts);
        }
        Ok(Info {
            size: u32::try_from(align_to_64(size, align)).map_err(|_| too_large())?,
            align,
            flats,
            flat_count,
            uses_memory,
            height,
            parts,
            shape: Shape::Fields(offsets.into()),
        })
    }

    /// A variant-shaped type of `count` cases carrying `payloads`: the discriminant, then
    /// every payload at one offset; flat, the discriminant, then each place joined over the
    /// cases (the spec's `join`).
    fn cases<'a>(
        &self,
        count: usize,
        payloads: impl Iterator<Item = Option<&'a Type>>,
    ) -> Result<Info, Arc<str>> {
        let disc = discriminant_size(count);
        let (mut max_size, mut max_align) = (0, 1);
        let mut flats = vec![Flat::I32];
        let mut widths = Vec::with_capacity(count);
        let (mut uses_memory, mut height, mut parts) = (false, 1u32, 1u32);
        for ty in payloads {
            let Some(ty) = ty else {
                widths.push(0);
                continue;
            };
            let p = self.get(ty)?;
            max_size = max_size.max(p.size);
            max_align = max_align.max(p.align);
            for (i, flat) in p.flats.iter().enumerate().take(FLATS_KEPT - 1) {
                match flats.get_mut(1 + i) {
                    Some(have) => *have = have.join(*flat),
                    None => flats.push(*flat),
                }
            }
            widths.push(p.flat_count);
            uses_memory |= p.uses_memory;
            height = height.max(p.height.saturating_add(1));
            parts = parts.saturating_add(p.parts);
        }
        let width = widths.iter().copied().max().unwrap_or(0);
        let payload = align_to(disc, max_align);
        let align = disc.max(max_align);
        let size = align_to_64(u64::from(payload) + u64::from(max_size), align);
        Ok(Info {
            size: u32::try_from(size).map_err(|_| too_large())?,
            align,
            flats,
            flat_count: width.saturating_add(1),
            uses_memory,
            height,
            parts,
            shape: Shape::Cases(Cases {
                disc,
                payload,
                width,
                widths: widths.into(),
            }),
        })
    }
}

/// The refusal of a type whose values would not fit in a 32-bit memory.
fn too_large() -> Arc<str> {
    "a type whose values take more than 4 GiB".into()
}

/// `info`, if it is within [`MAX_TYPE_DEPTH`] and [`MAX_TYPE_SIZE`].
fn bounded(info: Info) -> Result<Info, Arc<str>> {
    if info.height > MAX_TYPE_DEPTH {
        return Err(format!("types nested more than {MAX_TYPE_DEPTH} deep").into());
    }
    if info.parts > MAX_TYPE_SIZE {
        return Err(format!(
            "a type of more than {MAX_TYPE_SIZE} parts (counting a type once for each place that names it)"
        )
        .into());
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(wit: &str) -> (Resolve, Vec<Type>) {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("t.wit", wit).unwrap();
        let world = resolve.select_world(&[pkg], None).unwrap();
        let types = resolve.worlds[world]
            .exports
            .values()
            .filter_map(|item| match item {
                wit_parser::WorldItem::Function(f) => Some(f.params[0].ty),
                _ => None,
            })
            .collect();
        (resolve, types)
    }

    /// The flat types of each of `types`.
    fn flats(table: &Types, types: &[Type]) -> Vec<Vec<Flat>> {
        types
            .iter()
            .map(|t| table.get(t).unwrap().flats().to_vec())
            .collect()
    }

    /// The size and alignment of each of `types`.
    fn layouts(table: &Types, types: &[Type]) -> Vec<(u32, u32)> {
        types
            .iter()
            .map(|t| table.get(t).map(|i| (i.size, i.align)).unwrap())
            .collect()
    }

    /// The spec's examples: sizes, alignments and flat forms of composite types.
    #[test]
    fn layouts_follow_the_spec() {
        let (resolve, types) = world(
            "package t:t;
             world w {
               record r { a: u8, b: u32, c: u16 }
               variant v { x, y(f32), z(u64) }
               flags f { a, b, c, d, e, f, g, h, i }
               export a: func(p: r);
               export b: func(p: v);
               export c: func(p: option<string>);
               export d: func(p: result<u32, f32>);
               export e: func(p: f);
               export f: func(p: tuple<u8, u64>);
               export g: func(p: list<r>);
             }",
        );
        let table = Types::compile(&resolve);
        assert_eq!(
            layouts(&table, &types),
            [(12, 4), (16, 8), (12, 4), (8, 4), (2, 2), (16, 8), (8, 4)]
        );
        let flats = flats(&table, &types);
        use Flat::*;
        assert_eq!(
            flats,
            [
                vec![I32, I32, I32],
                vec![I32, I64],
                vec![I32, I32, I32],
                vec![I32, I32],
                vec![I32],
                vec![I32, I64],
                vec![I32, I32],
            ]
        );
    }

    /// An alias, of any depth, is laid out and flattened as the type it names, primitive or
    /// not (once an alias of `string` was laid out as one `i32`).
    #[test]
    fn aliases_are_the_types_they_name() {
        let (resolve, types) = world(
            "package t:t;
             world w {
               type s = string;
               type s2 = s;
               type n = u64;
               type g = s64;
               type x = f32;
               type y = f64;
               type c = char;
               type l = list<s2>;
               type o = option<s2>;
               export a: func(p: s);
               export b: func(p: s2);
               export c: func(p: n);
               export d: func(p: g);
               export e: func(p: x);
               export f: func(p: y);
               export g: func(p: c);
               export h: func(p: l);
               export i: func(p: o);
             }",
        );
        let table = Types::compile(&resolve);
        assert_eq!(
            layouts(&table, &types),
            [
                (8, 4),
                (8, 4),
                (8, 8),
                (8, 8),
                (4, 4),
                (8, 8),
                (4, 4),
                (8, 4),
                (12, 4)
            ]
        );
        let flats = flats(&table, &types);
        use Flat::*;
        assert_eq!(
            flats,
            [
                vec![I32, I32],
                vec![I32, I32],
                vec![I64],
                vec![I64],
                vec![F32],
                vec![F64],
                vec![I32],
                vec![I32, I32],
                vec![I32, I32, I32],
            ]
        );
        let memory: Vec<bool> = types
            .iter()
            .map(|t| table.get(t).unwrap().uses_memory)
            .collect();
        assert_eq!(
            memory,
            [true, true, false, false, false, false, false, true, true]
        );
    }
}
