// A C guest linked with wasi-libc as people link one (wit/wasi-c): `printf` and `fprintf`
// write through WASI's `fd_write`, `clock_gettime` reads WASI's clock, `getenv` its
// environment, all imported from `wasi_snapshot_preview1`. The bindings come from
// wit-bindgen's C generator; `cargo xtask build-guest --all` compiles both with zig's clang
// for wasm32-wasi into target/guest/wasi-c.wasm.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wasi_c.h"

void exports_wasi_c_greet(wasi_c_string_t *name, wasi_c_string_t *ret) {
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) abort();
  const char *greeting = getenv("GREETING");
  printf("greet(%.*s) at %lld s\n", (int)name->len, (const char *)name->ptr,
         (long long)now.tv_sec);
  fprintf(stderr, "GREETING is %s\n", greeting ? greeting : "not set");
  fflush(stdout);
  const char *word = greeting ? greeting : "Hello";
  size_t n = strlen(word) + name->len + 3;
  char *out = malloc(n + 1);
  if (!out) abort();
  int written = snprintf(out, n + 1, "%s, %.*s!", word, (int)name->len, (const char *)name->ptr);
  if (written < 0) abort();
  wasi_c_string_free(name);
  ret->ptr = (uint8_t *)out;
  ret->len = (size_t)written;
}
