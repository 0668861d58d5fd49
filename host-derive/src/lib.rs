//! `#[derive(ComponentType, Lower, Lift)]` for the `memhost` library's canonical ABI, as
//! wasmtime's derives of the same names: a Rust type stands for a WIT type of the world,
//! and the typed API (`Guest::typed`) lowers and lifts it with no `Val` in between.
//!
//! - A struct with named fields is a WIT `record`: the same fields, in the same order.
//! - A struct marked `#[component(flags)]`, of `bool` fields only, is WIT `flags`.
//! - An enum is a WIT `variant` (a case carries one payload, as `Case(T)`); an enum of
//!   unit cases is a WIT `enum` too.
//!
//! WIT names are the Rust names in kebab case (`max_len` is `max-len`, `NotFound` is
//! `not-found`); `#[component(name = "...")]` on a field or case gives another. The expansion
//! calls `memhost::__derive`, which reads the layouts from the world's type table: the ABI
//! lives in the library alone.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, Type, parse_macro_input};

/// `memhost::ComponentType`: the typecheck of the Rust type against a WIT type.
#[proc_macro_derive(ComponentType, attributes(component))]
pub fn derive_component_type(input: TokenStream) -> TokenStream {
    expand(input, Trait::ComponentType)
}

/// `memhost::Lower`: the Rust value handed to the guest.
#[proc_macro_derive(Lower, attributes(component))]
pub fn derive_lower(input: TokenStream) -> TokenStream {
    expand(input, Trait::Lower)
}

/// `memhost::Lift`: the Rust value taken from the guest.
#[proc_macro_derive(Lift, attributes(component))]
pub fn derive_lift(input: TokenStream) -> TokenStream {
    expand(input, Trait::Lift)
}

#[derive(Clone, Copy)]
enum Trait {
    ComponentType,
    Lower,
    Lift,
}

/// What the Rust type is, as WIT sees it.
enum Shape {
    Record(Vec<(Ident, String, Type)>),
    Flags(Vec<(Ident, String)>),
    /// Each case: its Rust name, WIT name, and payload type.
    Variant(Vec<(Ident, String, Option<Type>)>),
}

fn expand(input: TokenStream, which: Trait) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match shape(&input) {
        Ok(shape) => generate(&input.ident, &shape, which).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// `#[component(flags)]`, and `#[component(name = "...")]`'s name, of `attrs`.
fn component_attrs(attrs: &[Attribute]) -> syn::Result<(bool, Option<String>)> {
    let (mut flags, mut name) = (false, None);
    for attr in attrs.iter().filter(|a| a.path().is_ident("component")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("flags") {
                flags = true;
                Ok(())
            } else if meta.path.is_ident("name") {
                name = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else {
                Err(meta.error("expected `flags` or `name = \"...\"`"))
            }
        })?;
    }
    Ok((flags, name))
}

/// `max_len` as `max-len`.
fn kebab_of_snake(name: &str) -> String {
    name.trim_start_matches("r#").replace('_', "-")
}

/// `NotFound` as `not-found`.
fn kebab_of_camel(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.trim_start_matches("r#").chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else if c == '_' {
            out.push('-');
        } else {
            out.push(c);
        }
    }
    out
}

fn shape(input: &DeriveInput) -> syn::Result<Shape> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "the canonical ABI derives take no generic parameters",
        ));
    }
    let (flags, _) = component_attrs(&input.attrs)?;
    match &input.data {
        Data::Struct(s) => {
            let Fields::Named(named) = &s.fields else {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "a record or flags needs named fields (a tuple struct has no WIT names)",
                ));
            };
            let mut fields = Vec::new();
            for f in &named.named {
                let ident = f.ident.clone().expect("named");
                let (_, rename) = component_attrs(&f.attrs)?;
                let name = rename.unwrap_or_else(|| kebab_of_snake(&ident.to_string()));
                fields.push((ident, name, f.ty.clone()));
            }
            if fields.is_empty() {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "WIT has no empty records or flags",
                ));
            }
            if !flags {
                return Ok(Shape::Record(fields));
            }
            if fields.len() > 32 {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "WIT flags have at most 32 labels",
                ));
            }
            fields
                .into_iter()
                .map(|(ident, name, ty)| match &ty {
                    Type::Path(p) if p.path.is_ident("bool") => Ok((ident, name)),
                    _ => Err(syn::Error::new_spanned(
                        ty,
                        "each field of flags is a `bool`",
                    )),
                })
                .collect::<syn::Result<_>>()
                .map(Shape::Flags)
        }
        Data::Enum(e) => {
            if flags {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "`#[component(flags)]` goes on a struct of `bool`s",
                ));
            }
            if e.variants.is_empty() {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "WIT has no variants without cases",
                ));
            }
            let mut cases = Vec::new();
            for v in &e.variants {
                let (_, rename) = component_attrs(&v.attrs)?;
                let name = rename.unwrap_or_else(|| kebab_of_camel(&v.ident.to_string()));
                let payload = match &v.fields {
                    Fields::Unit => None,
                    Fields::Unnamed(u) if u.unnamed.len() == 1 => Some(u.unnamed[0].ty.clone()),
                    _ => {
                        return Err(syn::Error::new_spanned(
                            v,
                            "a case carries no payload or one: `Case` or `Case(T)`",
                        ));
                    }
                };
                cases.push((v.ident.clone(), name, payload));
            }
            Ok(Shape::Variant(cases))
        }
        Data::Union(_) => Err(syn::Error::new_spanned(
            &input.ident,
            "a union has no WIT type",
        )),
    }
}

fn generate(name: &Ident, shape: &Shape, which: Trait) -> Tokens {
    let d = quote!(::memhost::__derive);
    let rust = name.to_string();
    let body = match (shape, which) {
        (Shape::Record(fields), Trait::ComponentType) => {
            let names = fields.iter().map(|(_, n, _)| n);
            let checks = fields.iter().enumerate().map(|(i, (_, _, ty))| {
                quote!(<#ty as ::memhost::ComponentType>::typecheck(world, fields[#i])?;)
            });
            quote! {
                fn typecheck(world: #d::WitWorld<'_>, ty: #d::WitType) -> ::core::result::Result<(), ::std::string::String> {
                    let fields = #d::typecheck_record(world, ty, #rust, [#(#names),*])?;
                    #(#checks)*
                    ::core::result::Result::Ok(())
                }
            }
        }
        (Shape::Record(fields), Trait::Lower) => {
            let n = fields.len();
            let idents: Vec<_> = fields.iter().map(|(f, _, _)| f).collect();
            let index: Vec<_> = (0..n).collect();
            quote! {
                fn lower_flat(&self, cx: &mut ::memhost::LowerCx<'_>, ty: #d::WitType, out: &mut ::std::vec::Vec<u64>) -> ::core::result::Result<(), ::memhost::Error> {
                    let fields: [#d::WitType; #n] = #d::record_lower(cx, ty)?;
                    #(::memhost::Lower::lower_flat(&self.#idents, cx, fields[#index], out)?;)*
                    ::core::result::Result::Ok(())
                }

                fn store(&self, cx: &mut ::memhost::LowerCx<'_>, ty: #d::WitType, ptr: u32) -> ::core::result::Result<(), ::memhost::Error> {
                    let (fields, offsets): ([#d::WitType; #n], [u32; #n]) = #d::record_store(cx, ty)?;
                    #(::memhost::Lower::store(&self.#idents, cx, fields[#index], ptr + offsets[#index])?;)*
                    ::core::result::Result::Ok(())
                }
            }
        }
        (Shape::Record(fields), Trait::Lift) => {
            let n = fields.len();
            let idents: Vec<_> = fields.iter().map(|(f, _, _)| f).collect();
            let index: Vec<_> = (0..n).collect();
            quote! {
                fn lift_flat(cx: &::memhost::LiftCx<'_>, ty: #d::WitType, src: &mut ::memhost::FlatSrc<'_>) -> ::core::result::Result<Self, ::memhost::Error> {
                    let fields: [#d::WitType; #n] = #d::record_lift(cx, ty)?;
                    ::core::result::Result::Ok(Self {
                        #(#idents: ::memhost::Lift::lift_flat(cx, fields[#index], src)?,)*
                    })
                }

                fn load(cx: &::memhost::LiftCx<'_>, ty: #d::WitType, ptr: u32) -> ::core::result::Result<Self, ::memhost::Error> {
                    let (fields, offsets): ([#d::WitType; #n], [u32; #n]) = #d::record_load(cx, ty)?;
                    ::core::result::Result::Ok(Self {
                        #(#idents: ::memhost::Lift::load(cx, fields[#index], ptr + offsets[#index])?,)*
                    })
                }
            }
        }
        (Shape::Flags(flags), Trait::ComponentType) => {
            let names = flags.iter().map(|(_, n)| n);
            quote! {
                fn typecheck(world: #d::WitWorld<'_>, ty: #d::WitType) -> ::core::result::Result<(), ::std::string::String> {
                    #d::typecheck_flags(world, ty, #rust, &[#(#names),*])
                }
            }
        }
        (Shape::Flags(flags), Trait::Lower) => {
            let idents: Vec<_> = flags.iter().map(|(f, _)| f).collect();
            let bit: Vec<u32> = (0..).take(flags.len()).collect();
            let bits = quote! {
                let mut bits = 0u32;
                #(if self.#idents { bits |= 1 << #bit; })*
            };
            quote! {
                fn lower_flat(&self, _cx: &mut ::memhost::LowerCx<'_>, _ty: #d::WitType, out: &mut ::std::vec::Vec<u64>) -> ::core::result::Result<(), ::memhost::Error> {
                    #bits
                    #d::flags_lower_flat(out, bits);
                    ::core::result::Result::Ok(())
                }

                fn store(&self, cx: &mut ::memhost::LowerCx<'_>, ty: #d::WitType, ptr: u32) -> ::core::result::Result<(), ::memhost::Error> {
                    #bits
                    #d::flags_store(cx, ty, ptr, bits)
                }
            }
        }
        (Shape::Flags(flags), Trait::Lift) => {
            let idents: Vec<_> = flags.iter().map(|(f, _)| f).collect();
            let bit: Vec<u32> = (0..).take(flags.len()).collect();
            quote! {
                fn lift_flat(_cx: &::memhost::LiftCx<'_>, _ty: #d::WitType, src: &mut ::memhost::FlatSrc<'_>) -> ::core::result::Result<Self, ::memhost::Error> {
                    let bits = #d::flags_lift_flat(src);
                    ::core::result::Result::Ok(Self { #(#idents: bits & (1 << #bit) != 0,)* })
                }

                fn load(cx: &::memhost::LiftCx<'_>, ty: #d::WitType, ptr: u32) -> ::core::result::Result<Self, ::memhost::Error> {
                    let bits = #d::flags_load(cx, ty, ptr)?;
                    ::core::result::Result::Ok(Self { #(#idents: bits & (1 << #bit) != 0,)* })
                }
            }
        }
        (Shape::Variant(cases), Trait::ComponentType) => {
            let list = cases.iter().map(|(_, n, p)| {
                let has = p.is_some();
                quote!((#n, #has))
            });
            let checks = cases.iter().enumerate().filter_map(|(i, (_, _, p))| {
                p.as_ref().map(|ty| {
                    quote! {
                        if let ::core::option::Option::Some(t) = payloads[#i] {
                            <#ty as ::memhost::ComponentType>::typecheck(world, t)?;
                        }
                    }
                })
            });
            quote! {
                fn typecheck(world: #d::WitWorld<'_>, ty: #d::WitType) -> ::core::result::Result<(), ::std::string::String> {
                    let payloads = #d::typecheck_cases(world, ty, #rust, [#(#list),*])?;
                    #(#checks)*
                    ::core::result::Result::Ok(())
                }
            }
        }
        (Shape::Variant(cases), Trait::Lower) => {
            let flat = cases.iter().enumerate().map(|(i, (ident, _, p))| match p {
                None => quote!(Self::#ident => #d::case_lower_flat(cx, ty, #i, out, |_, _, _| ::core::result::Result::Ok(())),),
                Some(_) => quote!(Self::#ident(v) => #d::case_lower_flat(cx, ty, #i, out, |cx, ty, out| ::memhost::Lower::lower_flat(v, cx, ty, out)),),
            });
            let store = cases.iter().enumerate().map(|(i, (ident, _, p))| match p {
                None => quote!(Self::#ident => #d::case_store(cx, ty, #i, ptr, |_, _, _| ::core::result::Result::Ok(())),),
                Some(_) => quote!(Self::#ident(v) => #d::case_store(cx, ty, #i, ptr, |cx, ty, at| ::memhost::Lower::store(v, cx, ty, at)),),
            });
            quote! {
                fn lower_flat(&self, cx: &mut ::memhost::LowerCx<'_>, ty: #d::WitType, out: &mut ::std::vec::Vec<u64>) -> ::core::result::Result<(), ::memhost::Error> {
                    match self { #(#flat)* }
                }

                fn store(&self, cx: &mut ::memhost::LowerCx<'_>, ty: #d::WitType, ptr: u32) -> ::core::result::Result<(), ::memhost::Error> {
                    match self { #(#store)* }
                }
            }
        }
        (Shape::Variant(cases), Trait::Lift) => {
            let flat = cases.iter().enumerate().map(|(i, (ident, _, p))| match p {
                None => quote!(#i => ::core::result::Result::Ok(Self::#ident),),
                Some(_) => quote!(#i => ::core::result::Result::Ok(Self::#ident(::memhost::Lift::lift_flat(cx, #d::payload(cx, pty)?, src)?)),),
            });
            let load = cases.iter().enumerate().map(|(i, (ident, _, p))| match p {
                None => quote!(#i => ::core::result::Result::Ok(Self::#ident),),
                Some(_) => quote!(#i => ::core::result::Result::Ok(Self::#ident(::memhost::Lift::load(cx, #d::payload(cx, pty)?, at)?)),),
            });
            // The payload's type and place, named only where a case has a payload.
            let any = cases.iter().any(|(_, _, p)| p.is_some());
            let name = |n: &str| {
                if any {
                    format_ident!("{n}")
                } else {
                    format_ident!("_{n}")
                }
            };
            let (pty, src, at) = (name("pty"), name("src"), name("at"));
            quote! {
                fn lift_flat(cx: &::memhost::LiftCx<'_>, ty: #d::WitType, src: &mut ::memhost::FlatSrc<'_>) -> ::core::result::Result<Self, ::memhost::Error> {
                    #d::case_lift_flat(cx, ty, src, |case, #pty, #src| {
                        match case { #(#flat)* _ => ::core::result::Result::Err(#d::no_case(cx)) }
                    })
                }

                fn load(cx: &::memhost::LiftCx<'_>, ty: #d::WitType, ptr: u32) -> ::core::result::Result<Self, ::memhost::Error> {
                    #d::case_load(cx, ty, ptr, |case, #pty, #at| {
                        match case { #(#load)* _ => ::core::result::Result::Err(#d::no_case(cx)) }
                    })
                }
            }
        }
    };
    let trait_path = match which {
        Trait::ComponentType => quote!(::memhost::ComponentType),
        Trait::Lower => quote!(::memhost::Lower),
        Trait::Lift => quote!(::memhost::Lift),
    };
    quote! {
        #[automatically_derived]
        impl #trait_path for #name {
            #body
        }
    }
}
