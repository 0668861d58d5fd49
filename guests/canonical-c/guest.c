// The test world of the canonical ABI (wit/guest.wit), in C: the bindings come from
// wit-bindgen's C generator (`wit-bindgen c wit --world guest`), this file implements the
// functions, and `cargo xtask build-guest` compiles both with clang for wasm32 (zig's, from
// the `ziglang` package) into target/guest/canonical-c.wasm. No libc function that does
// I/O is used, so the module imports nothing.
//
// Ownership, as wit-bindgen's C bindings define it: every parameter that holds memory
// (strings, lists) belongs to the function, which frees it or hands it on; every result is
// malloc'ed here and freed by the generated `cabi_post_*` after the host has read it.

#include <stdlib.h>
#include <string.h>

#include "guest.h"

static const char SUFFIX[] = " Wasm is cool!";

// A new string of `len` bytes copied from `bytes` (no allocation for an empty one).
static guest_string_t copy(const uint8_t *bytes, size_t len) {
  guest_string_t s = {NULL, 0};
  if (len > 0) {
    s.ptr = malloc(len);
    if (!s.ptr) abort();
    memcpy(s.ptr, bytes, len);
    s.len = len;
  }
  return s;
}

// `s`, handed on as the result; one that starts with "panic:" aborts (the Rust guest
// panics).
void exports_guest_checked(guest_string_t *s, guest_string_t *ret) {
  if (s->len >= 6 && memcmp(s->ptr, "panic:", 6) == 0) abort();
  *ret = *s;
}

void exports_guest_transform(guest_string_t *s, guest_string_t *ret) {
  size_t n = s->len + sizeof(SUFFIX) - 1;
  uint8_t *out = malloc(n);
  if (!out) abort();
  memcpy(out, s->ptr, s->len);
  memcpy(out + s->len, SUFFIX, sizeof(SUFFIX) - 1);
  guest_string_free(s);
  ret->ptr = out;
  ret->len = n;
}

void exports_guest_reverse(guest_list_u8_t *b, guest_list_u8_t *ret) {
  for (size_t i = 0, j = b->len; i + 1 < j; i++, j--) {
    uint8_t t = b->ptr[i];
    b->ptr[i] = b->ptr[j - 1];
    b->ptr[j - 1] = t;
  }
  // The list is handed on: the post-return frees it.
  *ret = *b;
}

// A batch: each line through `transform`, the list handed back in place (each string is
// replaced by its transform; the list's array is the result's, freed by the post-return).
void exports_guest_transform_lines(guest_list_string_t *lines, guest_list_string_t *ret) {
  for (size_t i = 0; i < lines->len; i++) {
    guest_string_t out;
    exports_guest_transform(&lines->ptr[i], &out);
    lines->ptr[i] = out;
  }
  *ret = *lines;
}

void exports_guest_reverse_lines(guest_list_list_u8_t *lines, guest_list_list_u8_t *ret) {
  for (size_t i = 0; i < lines->len; i++) {
    guest_list_u8_t out;
    exports_guest_reverse(&lines->ptr[i], &out);
    lines->ptr[i] = out;
  }
  *ret = *lines;
}

// A chunk of whole lines: each line with the suffix before its newline (a last line
// without one gets the suffix at the end).
void exports_guest_transform_chunk(guest_string_t *chunk, guest_string_t *ret) {
  size_t lines = 0;
  for (size_t i = 0; i < chunk->len; i++) lines += chunk->ptr[i] == '\n';
  if (chunk->len > 0 && chunk->ptr[chunk->len - 1] != '\n') lines++;
  size_t n = chunk->len + lines * (sizeof(SUFFIX) - 1);
  uint8_t *out = n > 0 ? malloc(n) : NULL;
  if (n > 0 && !out) abort();
  size_t at = 0;
  for (size_t i = 0; i < chunk->len;) {
    size_t start = i;
    while (i < chunk->len && chunk->ptr[i] != '\n') i++;
    memcpy(out + at, chunk->ptr + start, i - start);
    at += i - start;
    memcpy(out + at, SUFFIX, sizeof(SUFFIX) - 1);
    at += sizeof(SUFFIX) - 1;
    if (i < chunk->len) {
      out[at++] = '\n';
      i++;
    }
  }
  guest_string_free(chunk);
  ret->ptr = out;
  ret->len = n;
}

// A chunk of whole lines: each line's bytes reversed in place, newlines where they were.
void exports_guest_reverse_chunk(guest_list_u8_t *chunk, guest_list_u8_t *ret) {
  for (size_t i = 0; i < chunk->len;) {
    size_t start = i;
    while (i < chunk->len && chunk->ptr[i] != '\n') i++;
    for (size_t a = start, b = i; a + 1 < b; a++, b--) {
      uint8_t t = chunk->ptr[a];
      chunk->ptr[a] = chunk->ptr[b - 1];
      chunk->ptr[b - 1] = t;
    }
    i++;
  }
  *ret = *chunk;
}

// Whether the batch holds the line `word`.
static bool holds(const guest_list_string_t *lines, const char *word) {
  size_t n = strlen(word);
  for (size_t i = 0; i < lines->len; i++) {
    if (lines->ptr[i].len == n && memcmp(lines->ptr[i].ptr, word, n) == 0) return true;
  }
  return false;
}

// `transform-lines`, but a batch holding the line "drop" loses its last result.
void exports_guest_drop_last(guest_list_string_t *lines, guest_list_string_t *ret) {
  bool lose = holds(lines, "drop");
  exports_guest_transform_lines(lines, ret);
  if (lose && ret->len > 0) {
    guest_string_free(&ret->ptr[ret->len - 1]);
    ret->len--;
  }
}

// `transform-lines`, but a batch holding the line "dup" repeats its last result.
void exports_guest_dup_last(guest_list_string_t *lines, guest_list_string_t *ret) {
  bool repeat = holds(lines, "dup");
  exports_guest_transform_lines(lines, ret);
  if (repeat && ret->len > 0) {
    guest_string_t *grown = realloc(ret->ptr, (ret->len + 1) * sizeof(guest_string_t));
    if (!grown) abort();
    grown[ret->len] = copy(grown[ret->len - 1].ptr, grown[ret->len - 1].len);
    ret->ptr = grown;
    ret->len++;
  }
}

void exports_guest_words(guest_string_t *s, guest_list_string_t *ret) {
  size_t count = 0;
  for (size_t i = 0; i < s->len; i++) {
    if (s->ptr[i] != ' ' && (i == 0 || s->ptr[i - 1] == ' ')) count++;
  }
  ret->ptr = NULL;
  ret->len = count;
  if (count > 0) {
    ret->ptr = malloc(count * sizeof(guest_string_t));
    if (!ret->ptr) abort();
  }
  size_t w = 0;
  for (size_t i = 0; i < s->len;) {
    if (s->ptr[i] == ' ') {
      i++;
      continue;
    }
    size_t start = i;
    while (i < s->len && s->ptr[i] != ' ') i++;
    ret->ptr[w++] = copy(s->ptr + start, i - start);
  }
  guest_string_free(s);
}

void exports_guest_join(guest_list_string_t *parts, guest_string_t *sep, guest_string_t *ret) {
  size_t n = 0;
  for (size_t i = 0; i < parts->len; i++) n += parts->ptr[i].len + (i > 0 ? sep->len : 0);
  uint8_t *out = n > 0 ? malloc(n) : NULL;
  if (n > 0 && !out) abort();
  size_t at = 0;
  for (size_t i = 0; i < parts->len; i++) {
    if (i > 0) {
      memcpy(out + at, sep->ptr, sep->len);
      at += sep->len;
    }
    memcpy(out + at, parts->ptr[i].ptr, parts->ptr[i].len);
    at += parts->ptr[i].len;
  }
  guest_list_string_free(parts);
  guest_string_free(sep);
  ret->ptr = out;
  ret->len = n;
}

void exports_guest_scalars(bool a, int8_t b, uint8_t c, int16_t d, uint16_t e, int32_t f,
                           uint32_t g, int64_t h, uint64_t i, float j, double k, uint32_t l,
                           guest_tuple12_bool_s8_u8_s16_u16_s32_u32_s64_u64_f32_f64_char32_t *ret) {
  *ret = (guest_tuple12_bool_s8_u8_s16_u16_s32_u32_s64_u64_f32_f64_char32_t){
      a, b, c, d, e, f, g, h, i, j, k, l};
}

uint64_t exports_guest_sum17(uint32_t a, uint32_t b, uint32_t c, uint32_t d, uint32_t e,
                             uint32_t f, uint32_t g, uint32_t h, uint32_t i, uint32_t j,
                             uint32_t k, uint32_t l, uint32_t m, uint32_t n, uint32_t o,
                             uint32_t p, uint32_t q) {
  return (uint64_t)a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p + q;
}

void exports_guest_move_point(guest_point_t *p, int32_t dx, int32_t dy, guest_point_t *ret) {
  // Wrapping, as the Rust guest's `wrapping_add`.
  ret->x = (int32_t)((uint32_t)p->x + (uint32_t)dx);
  ret->y = (int32_t)((uint32_t)p->y + (uint32_t)dy);
  size_t n = p->label.len + 1;
  uint8_t *label = malloc(n);
  if (!label) abort();
  memcpy(label, p->label.ptr, p->label.len);
  label[n - 1] = '\'';
  guest_string_free(&p->label);
  ret->label.ptr = label;
  ret->label.len = n;
}

double exports_guest_area(guest_shape_t *s) {
  double area = 0.0;
  switch (s->tag) {
    case GUEST_SHAPE_CIRCLE:
      area = 3.141592653589793 * (double)s->val.circle * (double)s->val.circle;
      break;
    case GUEST_SHAPE_RECT:
      area = (double)s->val.rect.f0 * (double)s->val.rect.f1;
      break;
    case GUEST_SHAPE_DOT:
      break;
    case GUEST_SHAPE_NAMED:
      area = (double)s->val.named.len;
      break;
  }
  guest_shape_free(s);
  return area;
}

// "shape N" for shape `i`, without printf (which would bring stdio, and imports, along).
static guest_string_t shape_name(uint32_t i) {
  char digits[10];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + i % 10);
    i /= 10;
  } while (i > 0);
  guest_string_t s;
  s.len = 6 + n;
  s.ptr = malloc(s.len);
  if (!s.ptr) abort();
  memcpy(s.ptr, "shape ", 6);
  for (size_t k = 0; k < n; k++) s.ptr[6 + k] = (uint8_t)digits[n - 1 - k];
  return s;
}

void exports_guest_shapes(uint32_t n, guest_list_shape_t *ret) {
  ret->len = n;
  ret->ptr = NULL;
  if (n == 0) return;
  ret->ptr = malloc(n * sizeof(guest_shape_t));
  if (!ret->ptr) abort();
  for (uint32_t i = 0; i < n; i++) {
    guest_shape_t *s = &ret->ptr[i];
    switch (i % 4) {
      case 0:
        s->tag = GUEST_SHAPE_CIRCLE;
        s->val.circle = (float)i;
        break;
      case 1:
        s->tag = GUEST_SHAPE_RECT;
        s->val.rect.f0 = i;
        s->val.rect.f1 = i + 1;
        break;
      case 2:
        s->tag = GUEST_SHAPE_DOT;
        break;
      default:
        s->tag = GUEST_SHAPE_NAMED;
        s->val.named = shape_name(i);
        break;
    }
  }
}

guest_color_t exports_guest_next_color(guest_color_t c) {
  return (guest_color_t)((c + 1) % 3);
}

guest_perms_t exports_guest_flip(guest_perms_t p) {
  return (guest_perms_t)(~p & (GUEST_PERMS_READ | GUEST_PERMS_WRITE | GUEST_PERMS_EXEC));
}

bool exports_guest_find(guest_list_string_t *haystack, guest_string_t *needle, uint32_t *ret) {
  bool found = false;
  for (size_t i = 0; i < haystack->len && !found; i++) {
    guest_string_t *s = &haystack->ptr[i];
    if (s->len == needle->len && memcmp(s->ptr, needle->ptr, s->len) == 0) {
      *ret = (uint32_t)i;
      found = true;
    }
  }
  guest_list_string_free(haystack);
  guest_string_free(needle);
  return found;
}

static bool space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool exports_guest_parse(guest_string_t *s, int64_t *ret, guest_string_t *err) {
  size_t i = 0, end = s->len;
  while (i < end && space(s->ptr[i])) i++;
  while (end > i && space(s->ptr[end - 1])) end--;
  bool negative = false;
  if (i < end && (s->ptr[i] == '-' || s->ptr[i] == '+')) negative = s->ptr[i++] == '-';
  bool ok = i < end;
  uint64_t value = 0;
  for (; ok && i < end; i++) {
    uint8_t c = s->ptr[i];
    if (c < '0' || c > '9' || value > (UINT64_C(1) << 63) / 10) {
      ok = false;
      break;
    }
    value = value * 10 + (c - '0');
  }
  if (ok && (negative ? value > (UINT64_C(1) << 63) : value > (uint64_t)INT64_MAX)) ok = false;
  guest_string_free(s);
  if (!ok) {
    static const char WHY[] = "not a number";
    *err = copy((const uint8_t *)WHY, sizeof(WHY) - 1);
    return false;
  }
  *ret = negative ? (int64_t)(0 - value) : (int64_t)value;
  return true;
}

bool exports_guest_nested(guest_option_string_t *maybe_o, guest_option_string_t *ret) {
  if (maybe_o == NULL) return false;
  // The inner option, and its string, are handed on.
  *ret = *maybe_o;
  return true;
}

bool exports_guest_check(bool ok, guest_string_t *err) {
  if (ok) return true;
  static const char WHY[] = "not ok";
  *err = copy((const uint8_t *)WHY, sizeof(WHY) - 1);
  return false;
}

void exports_guest_nothing(void) {}

void exports_memhost_test_text_upper(guest_string_t *s, guest_string_t *ret) {
  // ASCII letters only; the bytes of other chars stay as they are (still UTF-8).
  for (size_t i = 0; i < s->len; i++) {
    if (s->ptr[i] >= 'a' && s->ptr[i] <= 'z') s->ptr[i] = (uint8_t)(s->ptr[i] - 'a' + 'A');
  }
  *ret = *s;
}

uint32_t exports_memhost_test_text_count(guest_string_t *s) {
  uint32_t chars = 0;
  for (size_t i = 0; i < s->len; i++) {
    if ((s->ptr[i] & 0xC0) != 0x80) chars++;
  }
  guest_string_free(s);
  return chars;
}

// Aliases, back as they came: the string is handed on, the post-return frees it.
void exports_guest_aliases(guest_words_t *a, guest_big_t b, guest_signed_t c, guest_single_t d,
                           guest_real_t e, guest_letter_t f,
                           guest_tuple6_words_big_signed_single_real_letter_t *ret) {
  ret->f0 = *a;
  ret->f1 = b;
  ret->f2 = c;
  ret->f3 = d;
  ret->f4 = e;
  ret->f5 = f;
}

// The string with "!" appended.
void exports_guest_alias_result(guest_words_t *s, guest_text_t *ret) {
  uint8_t *out = malloc(s->len + 1);
  if (!out) abort();
  memcpy(out, s->ptr, s->len);
  out[s->len] = '!';
  ret->ptr = out;
  ret->len = s->len + 1;
  guest_words_free(s);
}
